import { createHash } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { Client as SshClient, utils } from 'ssh2';
import request from 'supertest';
import { startComputeE2e, type ComputeE2e } from '../../helpers/computeE2e';

/**
 * In-session services end to end (seed 8, actions 17, 18 and 24): the api, the session workflow,
 * one real node on the main engine, real kernels under gVisor without a network. Every service
 * is reached the way a user would: HTTP or SSH to the node's loopback, through the node's
 * listener and the relay into the kernel.
 */
let e2e: ComputeE2e;
/** A session of the built-in python:3.11 image (jupyter and custom-web-app), and one of an image of the test's own with three web apps. */
let sessionId: string;
let ownImageSession: string;
let ownImage: string;

const user = () => ({ Authorization: `Bearer ${e2e.api.userKey}` });
const services = (id = sessionId) => `/api/v1/sessions/${id}/services`;
const start = (body: Record<string, unknown>, id = sessionId) => request(e2e.api.app).post(services(id)).set(user()).send(body);
const webApp = { command: ['python3', '-m', 'http.server', '{port}', '--bind', '127.0.0.1'], port: 8080, protocol: 'http', url_path: '/' };

/** Whether something accepts connections on the node's loopback at the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function text(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  e2e = await startComputeE2e({ prefix: 'e2e-svc' });
  ownImage = `services-e2e-${e2e.tag}:1`;
  e2e.images.push(ownImage);
  await request(e2e.api.app).post('/api/v1/admin/images').set({ Authorization: `Bearer ${e2e.api.adminKey}` })
    .send({ name: ownImage, reference: e2e.infra.config.COMPUTE_KERNEL_IMAGE, apps: { 'custom-web-app': webApp, 'second-web-app': webApp, 'third-web-app': webApp } })
    .expect(201);
  [sessionId, ownImageSession] = await Promise.all([
    e2e.createSession({ resources: { cpu: '1', memory: '512M' } }),
    e2e.createSession({ image: ownImage }),
  ]);
}, 240_000);

afterAll(async () => {
  await e2e.teardown();
});

describe('images offer apps', () => {
  it('the built-in image offers jupyter and custom-web-app; an admin sets an image\'s apps, and a bad app is a 400', async () => {
    const admin = { Authorization: `Bearer ${e2e.api.adminKey}` };
    const builtIn = await request(e2e.api.app).get('/api/v1/admin/images/python%3A3.11').set(admin).expect(200);
    expect(Object.keys(builtIn.body.apps).sort()).toEqual(['custom-web-app', 'jupyter']);
    expect(builtIn.body.apps.jupyter).toMatchObject({ port: 8888, protocol: 'http', url_path: '/?token={token}' });
    const own = await request(e2e.api.app).get(`/api/v1/admin/images/${encodeURIComponent(ownImage)}`).set(admin).expect(200);
    expect(own.body.apps['second-web-app']).toEqual(webApp);

    const bad = (apps: unknown) => request(e2e.api.app).post('/api/v1/admin/images').set(admin).send({ name: `bad-${e2e.tag}:1`, reference: 'x/y:1', apps }).expect(400);
    await bad({ sshd: webApp });
    await bad({ web: { ...webApp, port: 80 } });
    await bad({ web: { ...webApp, command: [] } });
    await bad({ web: { ...webApp, protocol: 'udp' } });
    await request(e2e.api.app).get(`/api/v1/admin/images/bad-${e2e.tag}%3A1`).set(admin).expect(404);
  });
});

describe('POST /api/v1/sessions/:id/services', () => {
  it('starts jupyter (seed 8.1): its url with the token answers through the node, and the notebook server refuses a request without it', async () => {
    const res = await start({ app_name: 'jupyter', port: 8888 }).expect(201);
    expect(res.body).toMatchObject({ name: 'jupyter', protocol: 'http', host: '127.0.0.1', requested_port: 8888, container_port: 8888, kernel: { hostname: 'main1' } });
    const { token, host_port: port } = res.body as { token: string; host_port: number };
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(res.body.url).toBe(`http://127.0.0.1:${port}/?token=${token}`);

    const status = await fetch(`http://127.0.0.1:${port}/api/status?token=${token}`);
    expect(status.status).toBe(200);
    expect(await status.json()).toHaveProperty('started');
    expect((await fetch(`http://127.0.0.1:${port}/api/status`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${port}/api/status?token=${'0'.repeat(48)}`)).status).toBe(403);
  }, 120_000);

  it('answers the running service when the same app is started again (200, same ports and token)', async () => {
    const first = await request(e2e.api.app).get(services()).set(user()).expect(200);
    const jupyter = (first.body.items as { name: string }[]).find((s) => s.name === 'jupyter');
    const again = await start({ app_name: 'jupyter', port: 8888 }).expect(200);
    expect(again.body).toEqual(jupyter);
  });

  it('starts custom-web-app on the port of args (seed 8.2): it serves a file written in /home/work', async () => {
    await request(e2e.api.app).post(`/api/v1/sessions/${sessionId}/execute`).set(user())
      .send({ code: "open('/home/work/hello.txt', 'w').write('hello from the kernel')" }).expect(200);
    const res = await start({ app_name: 'custom-web-app', args: { port: 5000 } }).expect(201);
    expect(res.body).toMatchObject({ name: 'custom-web-app', requested_port: 5000, container_port: 5000 });
    expect(res.body.url).toBe(`http://127.0.0.1:${res.body.host_port}/`);
    expect(await text(`http://127.0.0.1:${res.body.host_port}/hello.txt`)).toEqual({ status: 200, body: 'hello from the kernel' });
  }, 60_000);

  it('gives a second app asking a port another service of the kernel holds the next free one, and says so (seed 8.3)', async () => {
    const first = await start({ app_name: 'custom-web-app', args: { port: 5000 } }, ownImageSession).expect(201);
    const second = await start({ app_name: 'second-web-app', args: { port: 5000 } }, ownImageSession).expect(201);
    expect(first.body).toMatchObject({ requested_port: 5000, container_port: 5000 });
    expect(second.body).toMatchObject({ requested_port: 5000, container_port: 5001, port_reassigned: true });
    expect(second.body.host_port).not.toBe(first.body.host_port);
    for (const service of [first.body, second.body] as { host_port: number }[]) {
      expect((await text(`http://127.0.0.1:${service.host_port}/`)).status).toBe(200);
    }
  }, 60_000);

  it('gives a free host port when the port asked for is taken on the node (seed 8.3), the app keeps its own', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as { port: number }).port;
    try {
      const res = await start({ app_name: 'third-web-app', port: taken }, ownImageSession).expect(201);
      expect(res.body).toMatchObject({ requested_port: taken, container_port: taken, port_reassigned: true });
      expect(res.body.host_port).not.toBe(taken);
      expect((await text(`http://127.0.0.1:${res.body.host_port}/`)).status).toBe(200);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 60_000);

  it('brings its services back after a restart of the session, on the same ports', async () => {
    const before = (await request(e2e.api.app).get(services(ownImageSession)).set(user()).expect(200)).body.items as { name: string; host_port: number; container_port: number }[];
    expect(before.map((s) => s.name).sort()).toEqual(['custom-web-app', 'second-web-app', 'third-web-app']);
    const restarted = await request(e2e.api.app).post(`/api/v1/sessions/${ownImageSession}/restart`).set(user()).expect(200);
    expect(restarted.body.status).toBe('RUNNING');
    for (const service of before) {
      const deadline = Date.now() + 30_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) status = await fetch(`http://127.0.0.1:${service.host_port}/`).then((res) => res.status, () => 0);
      expect([service.name, status]).toEqual([service.name, 200]);
    }
    expect((await request(e2e.api.app).get(services(ownImageSession)).set(user()).expect(200)).body.items).toEqual(before);
  }, 90_000);

  it('refuses an app the image does not offer with AppNotFound (seed 8.4), naming those it offers, and starts nothing', async () => {
    const before = (await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items.length as number;
    const res = await start({ app_name: 'unsupported-app' }).expect(404);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ code: 'AppNotFound', app_name: 'unsupported-app', available: ['custom-web-app', 'jupyter'] });
    await start({ app_name: 'second-web-app' }).expect(404);
    expect((await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items).toHaveLength(before);
  });

  it('refuses bad bodies with 400 and starts nothing', async () => {
    await start({ app_name: 'custom-web-app', port: 80 }).expect(400);
    await start({ app_name: 'custom-web-app', port: 6000, args: { port: 6001 } }).expect(400);
    await start({ app_name: 'custom-web-app', args: { port: 6000, extra: 1 } }).expect(400);
    await start({ app_name: 'custom-web-app', unknown: true }).expect(400);
    await start({}).expect(400);
  });
});

describe('the session\'s services', () => {
  it('are listed by GET …/services and in the session\'s info, with their urls and tokens', async () => {
    const listed = await request(e2e.api.app).get(services()).set(user()).expect(200);
    expect((listed.body.items as { name: string }[]).map((s) => s.name).sort()).toEqual(['custom-web-app', 'jupyter']);
    const info = await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}`).set(user()).expect(200);
    expect(info.body.services).toEqual(listed.body.items);
  });

  it('stop with DELETE: the url refuses, the app has ended (its port is free again in the kernel), and a second stop is ServiceNotFound', async () => {
    const listed = (await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items as { name: string; host_port: number }[];
    const web = listed.find((s) => s.name === 'custom-web-app')!;
    await request(e2e.api.app).delete(`${services()}/custom-web-app`).set(user()).expect(204);
    expect(await accepts(web.host_port)).toBe(false);
    const again = await request(e2e.api.app).delete(`${services()}/custom-web-app`).set(user()).expect(404);
    expect(again.body).toMatchObject({ code: 'ServiceNotFound', service: 'custom-web-app' });
    await request(e2e.api.app).delete(`${services()}/never-started`).set(user()).expect(404);

    const restarted = await start({ app_name: 'custom-web-app', args: { port: 5000 } }).expect(201);
    expect(restarted.body.container_port).toBe(5000);
    expect((await text(`http://127.0.0.1:${restarted.body.host_port}/hello.txt`)).body).toBe('hello from the kernel');
  }, 60_000);
});

describe('GET /api/v1/sessions/:id/direct-access', () => {
  it('logs in as work over SSH with the session\'s key, the host key matching the fingerprint it gives (action 24)', async () => {
    const res = await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}/direct-access`).set(user()).expect(200);
    expect(res.body).toMatchObject({ host: '127.0.0.1', user: 'work', service: { name: 'sshd', protocol: 'tcp', container_port: 2200 } });
    expect(res.body.private_key).toContain('OPENSSH PRIVATE KEY');
    expect(res.body.host_key_fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);

    const output = await new Promise<string>((resolve, reject) => {
      const client = new SshClient();
      let out = '';
      client.on('ready', () => client.exec('id -un && hostname', (err, stream) => {
        if (err) return reject(err);
        stream.on('data', (chunk: Buffer) => (out += chunk.toString()));
        stream.on('close', () => {
          client.end();
          resolve(out);
        });
      }));
      client.on('error', reject);
      client.connect({
        host: res.body.host, port: res.body.port, username: res.body.user, privateKey: res.body.private_key, readyTimeout: 30_000,
        hostVerifier: (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === res.body.host_key_fingerprint,
      });
    });
    expect(output).toBe('work\nmain1\n');

    const again = await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}/direct-access`).set(user()).expect(200);
    expect(again.body).toEqual(res.body);
    const publicKey = utils.parseKey(res.body.public_key as string);
    expect(publicKey).not.toBeInstanceOf(Error);
  }, 90_000);
});

describe('another user', () => {
  it('gets 404 SessionNotFound for every service route of a session not theirs, and changes nothing', async () => {
    const as = { Authorization: `Bearer ${e2e.other.key}` };
    const before = (await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items;
    for (const res of [
      await request(e2e.api.app).post(services()).set(as).send({ app_name: 'custom-web-app', port: 7000 }),
      await request(e2e.api.app).get(services()).set(as),
      await request(e2e.api.app).delete(`${services()}/jupyter`).set(as),
      await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}/direct-access`).set(as),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('SessionNotFound');
    }
    expect((await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items).toEqual(before);
  });
});

describe('the session\'s end', () => {
  it('closes every listener of its services, forgets them, and refuses new ones with InvalidSessionState', async () => {
    const listed = (await request(e2e.api.app).get(services()).set(user()).expect(200)).body.items as { name: string; host_port: number }[];
    expect(listed.map((s) => s.name).sort()).toEqual(['custom-web-app', 'jupyter', 'sshd']);
    for (const service of listed) expect(await accepts(service.host_port)).toBe(true);

    await request(e2e.api.app).delete(`/api/v1/sessions/${sessionId}`).set(user()).expect(200);
    const deadline = Date.now() + 60_000;
    while ((await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}`).set(user())).body.status !== 'TERMINATED' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const service of listed) expect(await accepts(service.host_port)).toBe(false);
    const info = await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}`).set(user()).expect(200);
    expect([info.body.status, info.body.services]).toEqual(['TERMINATED', []]);
    const refused = await start({ app_name: 'custom-web-app' }).expect(409);
    expect(refused.body).toMatchObject({ code: 'InvalidSessionState', current_status: 'TERMINATED' });
    await request(e2e.api.app).get(`/api/v1/sessions/${sessionId}/direct-access`).set(user()).expect(409);
  }, 90_000);
});
