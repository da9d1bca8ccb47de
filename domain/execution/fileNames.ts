/**
 * What a file name of an execution request may be: one the runner can honour, i.e. write as a
 * regular file inside the work directory and pass on a command line as that file. Anything
 * else is the request's fault (400 naming the field), never the runner's (a 500 that used to
 * retire the container). Pure: the api validates with it, and it states the runner's contract.
 */

/** A path, not a component: NAME_MAX (255 bytes) bounds each component, and names are ASCII. */
export const maxFileNameLength = 255;

// Letters, digits and `_ . - space`, as components joined by single slashes: no shell, quoting
// or encoding question ever arises in the runner, the compiler or the file system.
const allowedCharacters = /^[A-Za-z0-9_.\- /]*$/;

/** Why one name cannot be honoured, or undefined when it can. */
export function fileNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > maxFileNameLength) return `must be at most ${maxFileNameLength} characters`;
  if (name.includes('\0')) return 'must not contain a NUL character';
  if (!allowedCharacters.test(name)) return 'may hold only letters, digits, _ . - space and / between path segments';
  if (name.startsWith('/')) return 'must be a relative path';
  if (name.endsWith('/')) return 'must name a file, not a directory (no trailing /)';
  for (const segment of name.split('/')) {
    if (segment === '') return 'must not contain an empty path segment (//)';
    if (segment === '.' || segment === '..') return 'must not contain a . or .. segment';
    // The runner passes names as arguments: a leading dash would be read as an option.
    if (segment.startsWith('-')) return 'must not have a segment starting with -';
  }
  return undefined;
}

export interface FileNameConflict {
  /** Index of the later file of the two, the one reported. */
  index: number;
  message: string;
}

/**
 * Names that cannot all be written side by side: the same name twice, or a name that another
 * uses as a directory (`a` with `a/b`). Each conflict is reported on the later file.
 */
export function fileNameConflicts(names: readonly string[]): FileNameConflict[] {
  const conflicts: FileNameConflict[] = [];
  names.forEach((name, index) => {
    for (let earlier = 0; earlier < index; earlier++) {
      const other = names[earlier]!;
      const message = name === other ? `"${name}" is also the name of file ${earlier}`
        : other.startsWith(`${name}/`) ? `"${name}" is a directory of file ${earlier} ("${other}")`
          : name.startsWith(`${other}/`) ? `"${name}" would need file ${earlier} ("${other}") to be a directory`
            : undefined;
      if (message) {
        conflicts.push({ index, message });
        return;
      }
    }
  });
  return conflicts;
}
