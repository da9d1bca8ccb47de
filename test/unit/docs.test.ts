import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { errorCatalogue } from '../../domain/shared/errors';

const root = join(__dirname, '../..');

/** Git's view of the tree: ignored build output (dist/, coverage/) and node_modules are not the project's files. */
function repoFiles(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\n');
  return listed.filter((file) => file && existsSync(join(root, file)));
}

/** Code blocks and code spans show text, not links: `[a](b)` inside them is not a link. */
function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, (span) => span.replace(/[[\]()]/g, ' '));
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, text = ''] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const base = text.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count ? `${base}-${count}` : base);
  }
  return anchors;
}

function relativeLinks(page: string): { target: string; anchor?: string }[] {
  return [...withoutCode(readFileSync(page, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)]
    .map(([, href = '']) => href)
    .filter((href) => !/^[a-z][a-z+.-]*:/i.test(href))
    .map((href) => {
      const [path, anchor] = href.split('#', 2);
      return { target: path ? resolve(dirname(page), path) : page, anchor };
    });
}

describe('the Markdown pages', () => {
  const pages = repoFiles().filter((file) => file.endsWith('.md')).map((file) => join(root, file));

  it('has the pages the README links to', () => {
    expect(pages.map((page) => relative(root, page)).sort()).toEqual(
      expect.arrayContaining(['README.md', 'docs/api.md', 'docs/architecture.md', 'docs/configuration.md', 'docs/operations.md', 'docs/benchmarks.md', 'docs/adding-a-kind.md']),
    );
  });

  it.each(pages.map((page) => [relative(root, page), page] as const))('%s: every relative link points at a file, and a heading there', (_name, page) => {
    const broken = relativeLinks(page).flatMap(({ target, anchor }) => {
      const where = `${relative(root, target)}${anchor ? `#${anchor}` : ''}`;
      if (!existsSync(target)) return [`${where}: no such file`];
      if (anchor && target.endsWith('.md') && !headingAnchors(readFileSync(target, 'utf8')).has(anchor)) return [`${where}: no such heading`];
      return [];
    });
    expect(broken).toEqual([]);
  });
});

describe('docs/architecture.md', () => {
  const page = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const named = new Set([...page.matchAll(/^\| `([^`]+)\/` \|/gm)].map(([, folder = '']) => folder));

  it('names every folder of the repository in its layout', () => {
    const folders = new Set(repoFiles().flatMap((file) => {
      const parts = file.split('/').slice(0, -1);
      return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    }));
    // The folders inside these hold data (one per execution case), named by their parent's line.
    const projectFolders = [...folders].filter((folder) => !/^test\/cases\/.|^test\/replay\/histories\/./.test(folder));
    expect(projectFolders.filter((folder) => !named.has(folder)).sort()).toEqual([]);
  });

  it('names no folder that does not exist', () => {
    expect([...named].filter((folder) => !existsSync(join(root, folder)))).toEqual([]);
  });
});

describe('docs/api.md', () => {
  const page = readFileSync(join(root, 'docs/api.md'), 'utf8');

  it('lists every error of the catalogue with its HTTP status, and no other', () => {
    const documented = Object.fromEntries([...page.matchAll(/^\| `(\w+)` \| (\d{3})\b/gm)].map(([, code = '', status = '']) => [code, Number(status)]));
    const catalogue = Object.fromEntries(Object.entries(errorCatalogue).map(([code, { status }]) => [code, status]));
    expect(documented).toEqual(catalogue);
  });
});
