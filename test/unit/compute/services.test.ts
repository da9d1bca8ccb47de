import { imageAppsField, startServiceBody } from '../../../domain/compute/apps';
import { defaultKernelApps, fillPlaceholders, serviceUrl, withoutTokens } from '../../../domain/compute/services';

describe('service addresses', () => {
  it('fills every {port} and {token}, and leaves other braces alone', () => {
    expect(fillPlaceholders('--port={port} --x={port} t={token} {other}', { port: 8888, token: 'abc' })).toBe('--port=8888 --x=8888 t=abc {other}');
  });

  it('puts the url path (with the token) after the node\'s loopback and host port for http, and only the port for tcp', () => {
    expect(serviceUrl({ protocol: 'http', hostPort: 40001, urlPath: '/?token={token}', containerPort: 8888, token: 'f00' })).toBe('http://127.0.0.1:40001/?token=f00');
    expect(serviceUrl({ protocol: 'http', hostPort: 40002, urlPath: '', containerPort: 5000, token: 't' })).toBe('http://127.0.0.1:40002/');
    expect(serviceUrl({ protocol: 'tcp', hostPort: 2200, urlPath: '/ignored', containerPort: 2200, token: 't' })).toBe('tcp://127.0.0.1:2200');
  });
});

describe('an image\'s apps', () => {
  it('takes the built-in apps as they are, and fills protocol and url_path when left out', () => {
    expect(imageAppsField.parse(defaultKernelApps)).toEqual(defaultKernelApps);
    expect(imageAppsField.parse({ web: { command: ['python3', '-m', 'http.server', '{port}'], port: 8000 } }))
      .toEqual({ web: { command: ['python3', '-m', 'http.server', '{port}'], port: 8000, protocol: 'http', url_path: '/' } });
  });

  it('refuses the name of direct access, bad names, privileged ports, empty commands, NUL, unknown fields and paths without a slash', () => {
    const app = { command: ['x'], port: 8000 };
    for (const apps of [
      { sshd: app }, { 'Web App': app }, { web: { ...app, port: 80 } }, { web: { ...app, port: 70000 } }, { web: { ...app, command: [] } },
      { web: { ...app, command: ['a\u0000b'] } }, { web: { ...app, user: 'root' } }, { web: { ...app, url_path: 'lab' } }, { web: { ...app, protocol: 'udp' } },
    ]) {
      expect(imageAppsField.safeParse(apps).success).toBe(false);
    }
    expect(imageAppsField.safeParse(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`app${i}`, app]))).success).toBe(false);
  });
});

describe('the start-service body', () => {
  it('takes port (seed 8.1) or args.port (seed 8.2), or both when they agree', () => {
    expect(startServiceBody.parse({ app_name: 'jupyter', port: 8888 })).toEqual({ app_name: 'jupyter', port: 8888 });
    expect(startServiceBody.parse({ app_name: 'custom-web-app', args: { port: 5000 } })).toEqual({ app_name: 'custom-web-app', args: { port: 5000 } });
    expect(startServiceBody.safeParse({ app_name: 'x', port: 5000, args: { port: 5000 } }).success).toBe(true);
  });

  it('refuses ports that disagree, ports outside 1024-65535, other args and a missing name', () => {
    const refused = startServiceBody.safeParse({ app_name: 'x', port: 5000, args: { port: 5001 } });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]?.path).toEqual(['args', 'port']);
    for (const body of [{ app_name: 'x', port: 1023 }, { app_name: 'x', args: { port: 65536 } }, { app_name: 'x', args: { dir: '/' } }, { port: 5000 }, { app_name: '' }]) {
      expect(startServiceBody.safeParse(body).success).toBe(false);
    }
  });
});

describe('a failed service\'s log tail', () => {
  it('hides the tokens a server printed (jupyter\'s URLs and token lines), and keeps the rest', () => {
    const log = '[I] Jupyter Server is running at:\n    http://127.0.0.1:8888/tree?token=3f9ab1c2&x=1\n[C] To access, use token: 3f9ab1c2\nERROR: port in use';
    const hidden = withoutTokens(log);
    expect(hidden).not.toContain('3f9ab1c2');
    expect(hidden).toContain('http://127.0.0.1:8888/tree?token=<hidden>&x=1');
    expect(hidden).toContain('token: <hidden>');
    expect(hidden).toContain('ERROR: port in use');
  });
});
