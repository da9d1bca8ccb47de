import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ApiRoutes } from '../platform/routes';

/**
 * The terminal page: xterm.js from our own node_modules (no CDN), fitted to the window. The
 * connect token travels in the URL fragment (`/terminal/<id>#token=…`), which browsers never
 * send to a server, so it stays out of access logs; the page drops it from the address bar.
 * Heartbeats go over the socket; `pagehide` sends the close beacon with the token in its body.
 */
const clientScript = String.raw`(() => {
  const id = location.pathname.split('/').pop();
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  history.replaceState(null, '', location.pathname);
  const status = document.getElementById('status');
  const show = (state, text) => { document.body.dataset.state = state; status.textContent = text; };
  const term = new Terminal({ cursorBlink: true, scrollback: 5000 });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById('terminal'));
  fit.fit();
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = new URLSearchParams({ token, cols: String(term.cols), rows: String(term.rows) });
  const ws = new WebSocket(scheme + '//' + location.host + '/api/v1/terminals/' + id + '/ws?' + query);
  ws.binaryType = 'arraybuffer';
  const encoder = new TextEncoder();
  let heartbeat;
  ws.onmessage = (event) => {
    if (typeof event.data !== 'string') return term.write(new Uint8Array(event.data));
    const message = JSON.parse(event.data);
    if (message.type === 'ready') {
      show('connected', 'connected');
      heartbeat = setInterval(() => ws.send(JSON.stringify({ type: 'heartbeat' })), message.heartbeat_seconds * 1000);
      term.focus();
    }
  };
  ws.onclose = (event) => {
    clearInterval(heartbeat);
    show('closed', 'disconnected: ' + (event.reason || 'code ' + event.code));
    term.write('\r\n\x1b[33m[terminal closed: ' + (event.reason || event.code) + ']\x1b[0m\r\n');
  };
  term.onData((data) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data)); });
  term.onResize(({ cols, rows }) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols, rows })); });
  window.addEventListener('resize', () => fit.fit());
  window.addEventListener('pagehide', () => navigator.sendBeacon('/api/v1/terminals/' + id + '/close-beacon', JSON.stringify({ token })));
})();
`;

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>sessionflow terminal</title>
<link rel="stylesheet" href="/terminal/assets/xterm.css">
<style>
  html, body { height: 100%; margin: 0; background: #1e1e1e; color: #ccc; font: 13px system-ui, sans-serif; }
  body { display: flex; flex-direction: column; }
  #status { padding: 4px 8px; }
  #terminal { flex: 1; min-height: 0; }
</style>
</head>
<body data-state="connecting">
<div id="status">connecting…</div>
<div id="terminal"></div>
<script src="/terminal/assets/xterm.js"></script>
<script src="/terminal/assets/addon-fit.js"></script>
<script src="/terminal/assets/terminal.js"></script>
</body>
</html>
`;

const assets = {
  'xterm.js': { type: 'text/javascript', file: '@xterm/xterm/lib/xterm.js' },
  'xterm.css': { type: 'text/css', file: '@xterm/xterm/css/xterm.css' },
  'addon-fit.js': { type: 'text/javascript', file: '@xterm/addon-fit/lib/addon-fit.js' },
} as const;
const assetNames = ['xterm.js', 'xterm.css', 'addon-fit.js', 'terminal.js'] as const;

// Read once, on first request: the files are part of the installed dependencies.
const cache = new Map<string, string>();
function asset(name: (typeof assetNames)[number]): { type: string; body: string } {
  if (name === 'terminal.js') return { type: 'text/javascript', body: clientScript };
  const { type, file } = assets[name];
  let body = cache.get(name);
  if (body === undefined) cache.set(name, (body = readFileSync(require.resolve(file), 'utf8')));
  return { type, body };
}

// Only our own scripts and styles; the socket goes to the page's own origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'";

export function registerTerminalPageRoutes(api: ApiRoutes): void {
  api.route(
    {
      method: 'get', path: '/terminal/:id', summary: 'The browser terminal page; open it as /terminal/<id>#token=<token>', tag: 'terminals', access: 'public',
      params: z.object({ id: z.string().regex(/^[0-9a-f]{64}$/) }),
      responses: { 200: { description: 'HTML page', contentType: 'text/html' } },
    },
    ({ res }) => {
      res.set('Content-Security-Policy', contentSecurityPolicy).set('Cache-Control', 'no-store').type('text/html').send(page);
    },
  );
  api.route(
    {
      method: 'get', path: '/terminal/assets/:file', summary: 'Scripts and styles of the terminal page (xterm.js from our own dependencies)', tag: 'terminals', access: 'public',
      params: z.object({ file: z.enum(assetNames) }),
      responses: { 200: { description: 'the file', contentType: 'text/javascript' } },
    },
    ({ params, res }) => {
      const { type, body } = asset(params.file);
      res.set('Cache-Control', 'public, max-age=3600').type(type).send(body);
    },
  );
}
