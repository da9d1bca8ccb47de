import { fileNameConflicts, fileNameProblem, maxFileNameLength } from '../../../domain/execution/fileNames';

describe('fileNameProblem', () => {
  it.each([
    'main.py',
    'src/lib/util.py',
    'My File.c',
    '.hidden',
    '...',
    'a-b_c.d',
    'a'.repeat(maxFileNameLength),
  ])('accepts %j', (name) => {
    expect(fileNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['a'.repeat(maxFileNameLength + 1), /at most 255/],
    ['a\0b', /NUL/],
    ['/etc/passwd', /relative/],
    ['a/', /trailing/],
    ['src/', /trailing/],
    ['a//b', /empty path segment/],
    ['.', /\. or \.\./],
    ['..', /\. or \.\./],
    ['./main.py', /\. or \.\./],
    ['a/../../etc/x', /\. or \.\./],
    ['a/..', /\. or \.\./],
    ['-c', /starting with -/],
    ['src/-o', /starting with -/],
    ['a\\b', /only letters/],
    ['a\nb', /only letters/],
    ['naïve.py', /only letters/],
    ['$(id).sh', /only letters/],
  ])('rejects %j', (name, reason) => {
    expect(fileNameProblem(name)).toMatch(reason);
  });
});

describe('fileNameConflicts', () => {
  it.each<[string[], { index: number; message: RegExp }[]]>([
    [['main.py', 'a', 'a/b'], [{ index: 2, message: /"a\/b" would need file 1 \("a"\) to be a directory/ }]],
    [['main.py', 'a/b', 'a'], [{ index: 2, message: /"a" is a directory of file 1 \("a\/b"\)/ }]],
    [['main.py', 'x/y/z', 'x'], [{ index: 2, message: /directory of file 1/ }]],
    [['main.py', 'main.py'], [{ index: 1, message: /"main.py" is also the name of file 0/ }]],
    [['a', 'a', 'a/b'], [{ index: 1, message: /also the name of file 0/ }, { index: 2, message: /file 0 \("a"\)/ }]],
  ])('reports %j on the later file', (names, expected) => {
    expect(fileNameConflicts(names)).toEqual(expected.map(({ index, message }) => ({ index, message: expect.stringMatching(message) })));
  });

  it.each([
    [['main.py']],
    [['main.py', 'lib/a.py', 'lib/b.py']],
    // A shared prefix that is not a directory boundary is no conflict.
    [['ab', 'a/b', 'abc/d']],
    [['a.py', 'a.py.bak']],
  ])('finds none in %j', (names) => {
    expect(fileNameConflicts(names)).toEqual([]);
  });
});
