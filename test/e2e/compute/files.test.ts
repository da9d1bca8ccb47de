import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { extract } from 'tar-stream';
import { eventually } from '../../helpers/computeNode';
import { startComputeE2e, type ComputeE2e } from '../../helpers/computeE2e';

/**
 * Files of a compute session's main kernel through HTTP, end to end: the api, the session
 * workflow on a worker, one real node on the main Docker engine, a real kernel under gVisor.
 * The seed's list (6.1–6.3) and upload (7.1–7.4) scenarios, downloads of one file and of many,
 * JSON and multipart uploads, confinement to /home/work (.., absolute paths, a symlink made in
 * the kernel), and the refusals, each shown to write nothing.
 */
let t: ComputeE2e;
let sessionId: string;
/** Small enough that a test can make a file past it; large enough for seed 7.2's 5 MB. */
const downloadMaxBytes = 8 * 1024 * 1024;
/** One transfer of a user at a time: a test holds one open and sees the next refused. */
const transfersPerUser = 1;

const as = (key: string) => ({ Authorization: `Bearer ${key}` });
const user = () => as(t.api.userKey);
const files = (id = sessionId) => `/api/v1/sessions/${id}/files`;
const list = (query: Record<string, string> = {}, id = sessionId, key = t.api.userKey) => request(t.api.app).get(files(id)).query(query).set(as(key));
const uploadJson = (body: Record<string, unknown>, id = sessionId) => request(t.api.app).post(files(id)).set(user()).send(body);
const jsonFile = (name: string, content: Buffer | string) => ({ name, content: Buffer.from(content).toString('base64') });
/** A multipart part's options keeping the name's directories (form-data sends only the base name of a plain filename). */
const partNamed = (name: string) => {
  const options = { filename: name, filepath: name, contentType: 'application/octet-stream' };
  return options;
};
/** The bytes of an answer, whatever its type. */
const binary = (res: unknown, done: (err: Error | null, body: Buffer) => void) => {
  const stream = res as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
};
const download = (path: string | string[]) => request(t.api.app).get(`${files()}/download`).query({ path }).set(user()).buffer(true).parse(binary);
const downloadMany = (paths: string[]) => request(t.api.app).post(`${files()}/download`).set(user()).send({ paths }).buffer(true).parse(binary);
const execute = async (code: string) => {
  const res = await request(t.api.app).post(`/api/v1/sessions/${sessionId}/execute`).set(user()).send({ code }).expect(200);
  expect(res.body.exit_code).toBe(0);
  return res.body.result as unknown;
};
const names = async (path = '/home/work', showHidden = false) => ((await list({ path, show_hidden: String(showHidden) }).expect(200)).body.entries as { name: string }[]).map((entry) => entry.name);

async function untar(archive: Buffer): Promise<Map<string, Buffer | string>> {
  const entries = new Map<string, Buffer | string>();
  await new Promise<void>((resolve, reject) => {
    const tar = extract();
    tar.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        // Directories come as `name/`.
        entries.set(header.name.replace(/\/$/, ''), header.type === 'file' ? Buffer.concat(chunks) : header.type);
        next();
      });
    });
    tar.on('finish', resolve);
    tar.on('error', reject);
    tar.end(archive);
  });
  return entries;
}

beforeAll(async () => {
  t = await startComputeE2e({ prefix: 'e2e-f', config: { COMPUTE_DOWNLOAD_MAX_BYTES: downloadMaxBytes, COMPUTE_TRANSFERS_PER_USER: transfersPerUser } });
  sessionId = await t.createSession();
}, 180_000);

afterAll(async () => {
  await t.teardown();
});

describe('GET /api/v1/sessions/:id/files', () => {
  it('lists /home/work with each entry\'s type, size, mode and time, hidden entries left out (seed 6.1)', async () => {
    // The kernel runner's umask is 077: the modes are set here so the test knows them.
    await execute("import os\nos.makedirs('project', exist_ok=True)\nopen('notes.txt', 'w').write('12345')\nos.chmod('notes.txt', 0o644)\nos.chmod('project', 0o755)");
    const res = await list({ path: '/home/work' }).expect(200);
    expect(res.body).toMatchObject({ path: '/home/work', truncated: false });
    const entries = res.body.entries as { name: string; type: string; size: number; mode: string; mode_octal: string; mtime: string }[];
    expect(entries.find((e) => e.name === 'notes.txt')).toEqual({ name: 'notes.txt', type: 'file', size: 5, mode: '-rw-r--r--', mode_octal: '0644', mtime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    expect(entries.find((e) => e.name === 'project')).toMatchObject({ type: 'dir', mode: 'drwxr-xr-x', mode_octal: '0755' });
    expect(Math.abs(Date.parse(entries.find((e) => e.name === 'notes.txt')!.mtime) - Date.now())).toBeLessThan(10 * 60_000);
    expect(entries.map((e) => e.name)).toEqual([...entries.map((e) => e.name)].sort());
    expect(entries.some((e) => e.name.startsWith('.'))).toBe(false);
    // The default path is the work directory, and a relative one starts there.
    expect((await list().expect(200)).body.path).toBe('/home/work');
    expect((await list({ path: 'project' }).expect(200)).body).toEqual({ path: '/home/work/project', entries: [], truncated: false });
  });

  it('includes .bashrc and .profile with show_hidden (seed 6.2, on /home/work: the seed\'s "/home" is outside the work directory)', async () => {
    expect(await names('/home/work', true)).toEqual(expect.arrayContaining(['.bashrc', '.profile']));
    expect(await names('/home/work', false)).not.toContain('.bashrc');
    const home = await list({ path: '/home', show_hidden: 'true' }).expect(400);
    expect(home.body).toMatchObject({ code: 'PathOutsideWorkDir', path: '/home' });
  });

  it('answers a path that does not exist with PathNotFound (seed 6.3)', async () => {
    const res = await list({ path: '/non/existent/path' }).expect(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'PathNotFound', path: '/non/existent/path' });
    expect((await list({ path: 'missing-dir' }).expect(404)).body.code).toBe('PathNotFound');
  });

  it('refuses paths that lead out of /home/work: .., an absolute path, a symlink made in the kernel (400 PathOutsideWorkDir)', async () => {
    await execute("import os\nif not os.path.islink('out'): os.symlink('/etc', 'out')");
    for (const path of ['..', '/etc', '/etc/passwd', 'out', 'out/passwd', '/home/work/../../etc']) {
      expect([path, (await list({ path }).expect(400)).body.code]).toEqual([path, 'PathOutsideWorkDir']);
    }
    const link = ((await list().expect(200)).body.entries as { name: string }[]).find((e) => e.name === 'out');
    expect(link).toMatchObject({ type: 'symlink', target: '/etc' });
  });

  it('refuses a file as a directory to list, and bad query values, with 400 ValidationFailed', async () => {
    expect((await list({ path: 'notes.txt' }).expect(400)).body.code).toBe('ValidationFailed');
    expect((await list({ show_hidden: 'maybe' }).expect(400)).body.errors).toEqual([expect.objectContaining({ field: 'query.show_hidden' })]);
  });
});

describe('POST /api/v1/sessions/:id/files', () => {
  it('uploads one file, lists it, and downloads the same bytes, owned by work (seed 7.1)', async () => {
    const csv = Buffer.from(`a,b\n${'1,2\n'.repeat(254)}`);
    expect(csv.length).toBe(1020);
    const res = await uploadJson({ path: '/home/work', files: [jsonFile('data.csv', csv)] }).expect(200);
    expect(res.body).toEqual({ path: '/home/work', files: [{ name: 'data.csv', size: 1020 }] });
    const entry = ((await list().expect(200)).body.entries as { name: string }[]).find((e) => e.name === 'data.csv');
    expect(entry).toMatchObject({ type: 'file', size: 1020, mode: '-rw-r--r--' });
    const got = await download('data.csv').expect(200);
    expect(got.headers['content-type']).toMatch(/^text\/csv/);
    expect(got.headers['content-disposition']).toBe('attachment; filename=data.csv');
    expect(Buffer.compare(got.body as Buffer, csv)).toBe(0);
    expect(await execute("import os\nst = os.stat('data.csv')\n[st.st_uid, st.st_gid]")).toEqual([1000, 1000]);
  });

  it('uploads 10 files of 5 MB in all as multipart/form-data, and they come back in one tar (seed 7.2)', async () => {
    const batch = Array.from({ length: 10 }, (_, i) => ({ name: `batch/part-${i}.bin`, data: randomBytes(512 * 1024) }));
    let req = request(t.api.app).post(files()).set(user()).field('path', '/home/work');
    for (const file of batch) req = req.attach('files', file.data, partNamed(file.name));
    const res = await req.expect(200);
    expect(res.body).toEqual({ path: '/home/work', files: batch.map((file) => ({ name: file.name, size: 512 * 1024 })) });
    expect(await names('/home/work/batch')).toEqual(batch.map((file) => file.name.slice('batch/'.length)));
    const archive = await downloadMany(['batch']).expect(200);
    expect(archive.headers['content-type']).toBe('application/x-tar');
    expect(archive.headers['content-disposition']).toBe('attachment; filename=batch.tar');
    const entries = await untar(archive.body as Buffer);
    for (const file of batch) expect(Buffer.compare(entries.get(file.name) as Buffer, file.data)).toBe(0);
  });

  it('refuses 21 files with TooManyFiles and writes none of them (seed 7.3)', async () => {
    const many = Array.from({ length: 21 }, (_, i) => jsonFile(`many-${i}.txt`, `file ${i}`));
    const res = await uploadJson({ files: many }).expect(400);
    expect(res.body).toMatchObject({ code: 'TooManyFiles', count: 21, max_files: 20 });
    let multipart = request(t.api.app).post(files()).set(user());
    for (let i = 0; i < 21; i++) multipart = multipart.attach('files', Buffer.from(`file ${i}`), `many-${i}.txt`);
    expect((await multipart.expect(400)).body.code).toBe('TooManyFiles');
    expect((await names()).filter((name) => name.startsWith('many-'))).toEqual([]);
  });

  it('refuses a 2 MiB file with FileTooLarge naming it, and writes the good file beside it neither (seed 7.4)', async () => {
    const big = randomBytes(2 * 1024 * 1024);
    const res = await uploadJson({ files: [jsonFile('good.txt', 'fine'), jsonFile('big.bin', big)] }).expect(413);
    expect(res.body).toMatchObject({ code: 'FileTooLarge', name: 'big.bin', max_bytes: 1024 * 1024 });
    const multipart = await request(t.api.app).post(files()).set(user()).attach('files', Buffer.from('fine'), 'good.txt').attach('files', big, 'big.bin').expect(413);
    expect(multipart.body).toMatchObject({ code: 'FileTooLarge', name: 'big.bin' });
    const listed = await names();
    expect(listed).not.toContain('good.txt');
    expect(listed).not.toContain('big.bin');
    // Exactly the limit is fine.
    await uploadJson({ files: [jsonFile('exactly-1mib.bin', randomBytes(1024 * 1024))] }).expect(200);
  });

  it('makes subdirectories of relative names and a missing target directory, and overwrites an existing file', async () => {
    await uploadJson({ path: 'uploads/new', files: [jsonFile('a/b/c.txt', 'deep'), jsonFile('top.txt', 'v1')] }).expect(200);
    await uploadJson({ path: '/home/work/uploads/new', files: [jsonFile('top.txt', 'v2')] }).expect(200);
    expect(await names('uploads/new')).toEqual(['a', 'top.txt']);
    expect((await download('uploads/new/a/b/c.txt').expect(200)).body.toString()).toBe('deep');
    expect((await download('uploads/new/top.txt').expect(200)).body.toString()).toBe('v2');
  });

  it('refuses a transfer past COMPUTE_TRANSFERS_PER_USER with 429 TooManyTransfers (Retry-After) before reading its body; other users are not held back', async () => {
    const server = t.api.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    // An upload whose body comes slowly: it holds the user's one transfer while it lasts.
    const held = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: files(), headers: { ...user(), 'Content-Type': 'application/json', 'Content-Length': '1000000' } });
    held.on('error', () => undefined);
    held.write('{"files": [');
    try {
      const refused = await eventually(async () => {
        const res = await request(t.api.app).get(`${files()}/download`).query({ path: 'nothing-here' }).set(user());
        return res.status === 429 ? res : undefined;
      }, 30);
      expect(refused.body).toMatchObject({ code: 'TooManyTransfers', limit: 1 });
      expect(refused.headers['retry-after']).toBe('1');
      expect((await uploadJson({ files: [jsonFile('refused.txt', 'x')] })).status).toBe(429);
      // Another user's transfer is theirs to make (here: not their session, so 404, not 429).
      expect((await request(t.api.app).get(`${files()}/download`).query({ path: 'x' }).set(as(t.other.key))).status).toBe(404);
    } finally {
      held.destroy();
      server.close();
    }
    // The held one ended: the user's next transfer goes through.
    await eventually(async () => ((await uploadJson({ files: [jsonFile('after.txt', 'ok')] })).status === 200 ? true : undefined), 30);
    expect(await names()).not.toContain('refused.txt');
  });

  it('refuses bad file names with 400 ValidationFailed naming the field, and writes nothing', async () => {
    for (const bad of ['../escape.txt', '/etc/passwd', 'a//b.txt', 'a/./b.txt', 'nul\u0000.txt', '', 'dir/../../x']) {
      const res = await uploadJson({ files: [jsonFile('ok-beside-bad.txt', 'x'), jsonFile(bad, 'x')] }).expect(400);
      expect([bad, res.body.code, res.body.errors]).toEqual([bad, 'ValidationFailed', [expect.objectContaining({ field: 'body.files.1.name' })]]);
    }
    const twice = await uploadJson({ files: [jsonFile('twice.txt', 'x'), jsonFile('twice.txt', 'y')] }).expect(400);
    expect(twice.body.errors).toEqual([expect.objectContaining({ field: 'body.files.1.name' })]);
    expect((await uploadJson({ files: [] }).expect(400)).body.code).toBe('ValidationFailed');
    expect((await uploadJson({ files: [{ name: 'x', content: 'not base64!' }] }).expect(400)).body.code).toBe('ValidationFailed');
    expect((await uploadJson({ files: [jsonFile('x', 'x')], extra: 1 }).expect(400)).body.code).toBe('ValidationFailed');
    const multipart = await request(t.api.app).post(files()).set(user()).attach('files', Buffer.from('x'), partNamed('../up.txt')).expect(400);
    expect(multipart.body.errors).toEqual([expect.objectContaining({ field: 'body.files.0.name' })]);
    const listed = await names();
    for (const name of ['ok-beside-bad.txt', 'twice.txt', 'escape.txt', 'x', 'up.txt']) expect(listed).not.toContain(name);
  });

  it('refuses a target outside /home/work (absolute, .., through a symlink) with PathOutsideWorkDir and writes nothing', async () => {
    for (const path of ['/etc', '/tmp', '..', 'out', 'out/evil', '/non/existent/path']) {
      const res = await uploadJson({ path, files: [jsonFile('planted.txt', 'x')] }).expect(400);
      expect([path, res.body.code]).toEqual([path, 'PathOutsideWorkDir']);
    }
    const through = await uploadJson({ files: [jsonFile('out/planted.txt', 'x')] }).expect(400);
    expect(through.body.code).toBe('PathOutsideWorkDir');
    expect(await execute("import os\n[os.path.exists(p) for p in ['/etc/planted.txt', '/tmp/planted.txt', '/home/planted.txt']]")).toEqual([false, false, false]);
  });
});

describe('GET and POST /api/v1/sessions/:id/files/download', () => {
  it('downloads what code executed in the kernel wrote', async () => {
    await execute("open('x.txt', 'w').write('hi')");
    const res = await download('x.txt').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['content-length']).toBe('2');
    expect(res.body.toString()).toBe('hi');
  });

  it('names a file of any name in Content-Disposition, and types it by its extension', async () => {
    await uploadJson({ files: [jsonFile('résumé 1.json', '{"a": 1}'), jsonFile('no-extension', 'raw')] }).expect(200);
    const json = await download('résumé 1.json').expect(200);
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(json.headers['content-disposition']).toBe('attachment; filename="r?sum? 1.json"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%201.json');
    expect(json.body.toString()).toBe('{"a": 1}');
    expect((await download('no-extension').expect(200)).headers['content-type']).toBe('application/octet-stream');
  });

  it('downloads many paths as one tar (POST, or a repeated path), and a directory asked alone as a tar', async () => {
    await uploadJson({ files: [jsonFile('many/one.txt', 'one'), jsonFile('many/two.txt', 'two'), jsonFile('many/sub/three.txt', 'three')] }).expect(200);
    const posted = await downloadMany(['many/one.txt', '/home/work/many/sub', 'x.txt']).expect(200);
    expect(posted.headers['content-disposition']).toBe('attachment; filename=files.tar');
    const entries = await untar(posted.body as Buffer);
    expect([...entries.keys()].sort()).toEqual(['many/one.txt', 'many/sub', 'many/sub/three.txt', 'x.txt']);
    expect(entries.get('many/sub/three.txt')?.toString()).toBe('three');
    const repeated = await untar((await download(['many/one.txt', 'many/two.txt']).expect(200)).body as Buffer);
    expect([...repeated.keys()].sort()).toEqual(['many/one.txt', 'many/two.txt']);
    const directory = await download('many').expect(200);
    expect(directory.headers['content-type']).toBe('application/x-tar');
    expect([...(await untar(directory.body as Buffer)).keys()].sort()).toEqual(['many', 'many/one.txt', 'many/sub', 'many/sub/three.txt', 'many/two.txt']);
  });

  it('keeps a symlink inside a tar as a link and never follows it out of /home/work', async () => {
    expect(JSON.parse((await downloadMany(['out', 'x.txt']).expect(400)).body.toString()).code).toBe('PathOutsideWorkDir');
    await execute("import os\nos.makedirs('linked', exist_ok=True)\nif not os.path.islink('linked/etc'): os.symlink('/etc', 'linked/etc')");
    const archive = await untar((await downloadMany(['linked']).expect(200)).body as Buffer);
    expect([...archive.keys()].sort()).toEqual(['linked', 'linked/etc']);
    expect(archive.get('linked/etc')).toBe('symlink');
  });

  it('refuses paths outside /home/work (400) or missing (404), and a download past COMPUTE_DOWNLOAD_MAX_BYTES (413)', async () => {
    for (const path of ['/etc/passwd', '../..', 'out/passwd']) expect([path, (await download(path).expect(400)).body.toString()]).toEqual([path, expect.stringContaining('PathOutsideWorkDir')]);
    expect((await download('/non/existent/path').expect(404)).body.toString()).toContain('PathNotFound');
    expect((await downloadMany(['x.txt', 'nope.txt']).expect(404)).body.toString()).toContain('PathNotFound');
    await execute(`open('huge.bin', 'wb').write(b'0' * ${downloadMaxBytes + 1})`);
    expect(JSON.parse((await download('huge.bin').expect(413)).body.toString())).toMatchObject({ code: 'DownloadTooLarge', max_bytes: downloadMaxBytes });
    expect(JSON.parse((await downloadMany(['huge.bin']).expect(413)).body.toString()).code).toBe('DownloadTooLarge');
    await request(t.api.app).post(`${files()}/download`).set(user()).send({ paths: [] }).expect(400);
    await request(t.api.app).get(`${files()}/download`).set(user()).expect(400);
  });

  it('leaves no staging rows behind', async () => {
    const { rows } = await t.infra.pool.query('SELECT count(*)::int AS n FROM compute_file_transfers WHERE session_id = $1', [sessionId]);
    expect(rows[0].n).toBe(0);
  });
});

describe('owner scoping and sessions not RUNNING', () => {
  it('answers another user\'s session as unknown (404) on every file route, and writes nothing', async () => {
    const answers = [
      await list({}, sessionId, t.other.key),
      await request(t.api.app).post(files()).set(as(t.other.key)).send({ files: [jsonFile('intruder.txt', 'x')] }),
      await request(t.api.app).get(`${files()}/download`).query({ path: 'x.txt' }).set(as(t.other.key)),
      await request(t.api.app).post(`${files()}/download`).set(as(t.other.key)).send({ paths: ['x.txt'] }),
    ];
    expect(answers.map((res) => [res.status, res.body.code])).toEqual(Array(4).fill([404, 'SessionNotFound']));
    expect(await names()).not.toContain('intruder.txt');
    expect((await list({}, randomUUID()).expect(404)).body.code).toBe('SessionNotFound');
  });

  it('refuses every file route on an ended session with InvalidSessionState (409)', async () => {
    const created = await request(t.api.app).post('/api/v1/sessions').set(user()).send({ image: 'python:3.11', scaling_group: t.group, resources: { cpu: '0.5', memory: '256M' }, enqueue_only: true }).expect(201);
    const id = created.body.id as string;
    t.sessions.push(id);
    await request(t.api.app).delete(`/api/v1/sessions/${id}?forced=true`).set(user()).expect(200);
    const statusOf = async () => (await request(t.api.app).get(`/api/v1/sessions/${id}`).set(user()).expect(200)).body.status as string;
    for (let i = 0; i < 150 && !['TERMINATED', 'CANCELLED'].includes(await statusOf()); i++) await new Promise((resolve) => setTimeout(resolve, 200));
    const answers = [
      await list({}, id),
      await uploadJson({ files: [jsonFile('late.txt', 'x')] }, id),
      await request(t.api.app).get(`${files(id)}/download`).query({ path: 'x.txt' }).set(user()),
    ];
    expect(answers.map((res) => [res.status, res.body.code, res.body.current_status])).toEqual(Array(3).fill([409, 'InvalidSessionState', await statusOf()]));
    const { rows } = await t.infra.pool.query('SELECT count(*)::int AS n FROM compute_file_transfers WHERE session_id = $1', [id]);
    expect(rows[0].n).toBe(0);
  });
});
