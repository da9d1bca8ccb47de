import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser } from 'playwright-core';
import request from 'supertest';
import { eventually, listenWithBridge, startApiHarness, type ApiHarness } from '../../helpers/api';
import { openInfra, type Infra } from '../../helpers/infra';
import { startSshServer, type SshServer } from '../../helpers/sshd';
import { connectTestEnv } from '../../helpers/temporal';
import { bearer, registerSshHost, testCredentialsKey } from '../../helpers/terminal';

// Debian's chromium (scripts/ensure-chromium.sh); nothing is downloaded. The flags keep it
// headless and off the network: no sandbox (root in a container), no GPU, no background fetches.
const chromiumFlags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let env: TestWorkflowEnvironment;
let infra: Infra;
let sshd: SshServer;
let api: ApiHarness;
let server: { baseUrl: string; close(): Promise<void> };
let browser: Browser;
let hostId: string;

beforeAll(async () => {
  env = await connectTestEnv();
  infra = openInfra();
  sshd = await startSshServer();
  api = await startApiHarness(env, infra, { TERMINAL_CREDENTIALS_KEY: testCredentialsKey() });
  server = await listenWithBridge(api.app);
  hostId = await registerSshHost(api.app, api.adminKey, sshd, `browser-${Date.now().toString(36)}`);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumFlags });
});
afterAll(async () => {
  await browser?.close();
  await server.close();
  await api.stop();
  await sshd.stop();
  await infra.close();
  await env.teardown();
});

describe('the terminal page in headless Chromium', () => {
  it('runs a typed command, shows its output, and sends the close beacon when the page goes away', async () => {
    const opened = await request(api.app).post('/api/v1/terminals').set(bearer(api.userKey)).send({ host_id: hostId, mode: 'popout' }).expect(201);
    const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (req) => requests.push(req.url()));
    await page.goto(`${server.baseUrl}${opened.body.page_url}`);
    await page.waitForSelector('body[data-state="connected"]');
    // The token leaves the address bar once read.
    expect(page.url()).toBe(`${server.baseUrl}/terminal/${opened.body.session_id}`);

    await page.locator('.xterm').click();
    await page.keyboard.type('echo browser-$((6*7))');
    await page.keyboard.press('Enter');
    // The echoed command line reads browser-$((6*7)); only the shell's output reads browser-42.
    await page.locator('.xterm-rows', { hasText: 'browser-42' }).waitFor();

    // Every asset came from this api, none from a CDN.
    expect(requests.filter((url) => !url.startsWith(`${server.baseUrl}/`))).toEqual([]);

    await page.close({ runBeforeUnload: true });
    const closed = await eventually(() => request(api.app).get(`/api/v1/terminals/${opened.body.session_id}`).set(bearer(api.userKey)), (res) => res.body.status !== 'active');
    expect(closed.body).toMatchObject({ status: 'closed', reason_closed: 'client_lost' });
    await context.close();
  });
});
