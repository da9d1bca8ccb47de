import type Docker from 'dockerode';
import type { Express } from 'express';
import request from 'supertest';
import { computeSessionLabel } from '../../activities/compute/node';
import { execInKernel, relaySource } from '../../activities/compute/serviceProxy';
import { instanceLabel } from '../../activities/shared/docker';
import { startComputeE2e } from '../helpers/computeE2e';
import { load, printTable, runBench } from './stats';

interface ServiceAnswer { host_port: number; token: string; url: string }

/**
 * Service figures in one RUNNING session: start → the URL answers (the start waits on the node
 * until the app listens, so the first request after it is the proof), for custom-web-app
 * (python3 -m http.server) and jupyter; and one request through the node's listener to a
 * running app (each connection is one `docker exec` of the relay). Every start is followed by
 * a stop, so each one launches the app anew. The floor: the same http.server started in the
 * same kernel by `docker exec -d`, and looked at by exec until it answers.
 */
export async function benchServices(app: Express, key: string, sessionId: string, { docker, instance }: { docker: Docker; instance: string }, runs = { web: 10, jupyter: 5, requests: 30 }) {
  const auth = { Authorization: `Bearer ${key}` };
  const [kernel] = await docker.listContainers({ filters: { label: [`${instanceLabel}=${instance}`, `${computeSessionLabel}=${sessionId}`] } });
  const floor = await load(runs.web, 1, async (i) => {
    const port = 6100 + i;
    const exec = await docker.getContainer(kernel!.Id).exec({
      Cmd: ['/bin/sh', '-c', `echo $$ >/tmp/floor.pid; cd /home/work && exec python3 -m http.server ${port} --bind 127.0.0.1 >/dev/null 2>&1`], User: '1000:1000',
    });
    await exec.start({ Detach: true });
    while (!(await execInKernel(docker, kernel!.Id, ['python3', '-I', '-S', '-c', relaySource, 'probe', '127.0.0.1', String(port)])).stdout.trim()) { /* not yet */ }
    await execInKernel(docker, kernel!.Id, ['/bin/sh', '-c', 'kill "$(cat /tmp/floor.pid)"']);
  });
  const startAndAnswer = (name: string, probe: (service: ServiceAnswer) => string) => async () => {
    const res = await request(app).post(`/api/v1/sessions/${sessionId}/services`).set(auth).send({ app_name: name });
    if (res.status !== 201) throw new Error(`start ${name}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    const answered = await fetch(probe(res.body as ServiceAnswer));
    await answered.arrayBuffer();
    if (answered.status !== 200) throw new Error(`${name} answered ${answered.status}`);
  };
  const stop = async (name: string) => void (await request(app).delete(`/api/v1/sessions/${sessionId}/services/${name}`).set(auth));

  const web = await load(runs.web, 1, async () => {
    try {
      await startAndAnswer('custom-web-app', (s) => s.url)();
    } finally {
      await stop('custom-web-app');
    }
  });
  const jupyter = await load(runs.jupyter, 1, async () => {
    try {
      await startAndAnswer('jupyter', (s) => `http://127.0.0.1:${s.host_port}/api/status?token=${s.token}`)();
    } finally {
      await stop('jupyter');
    }
  });
  const running = (await request(app).post(`/api/v1/sessions/${sessionId}/services`).set(auth).send({ app_name: 'custom-web-app' })).body as ServiceAnswer;
  const relayed = await load(runs.requests, 1, async () => {
    const res = await fetch(running.url);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`answered ${res.status}`);
  });
  await stop('custom-web-app');
  return [
    { name: 'floor: docker exec -d http.server → answers', samples: floor.samples, extra: `errors ${floor.errors}` },
    { name: 'service start → URL answers, custom-web-app', samples: web.samples, extra: `errors ${web.errors}` },
    { name: 'service start → URL answers, jupyter', samples: jupyter.samples, extra: `errors ${jupyter.errors}` },
    { name: 'GET through the listener (new connection)', samples: relayed.samples, extra: `errors ${relayed.errors}` },
  ];
}

/** On its own: `BENCH=computeServices scripts/bench.sh`. */
async function main(): Promise<void> {
  process.env.SF_TEST_WORKFLOW_BUNDLE ??= require.resolve('../../workflow-bundle.js');
  process.env.SESSIONFLOW_INSTANCE ??= 'bench-compute';
  const e2e = await startComputeE2e({ prefix: 'bench-svc' });
  try {
    const sessionId = await e2e.createSession({ resources: { cpu: '1', memory: '512M' } });
    const rows = await benchServices(e2e.api.app, e2e.api.userKey, sessionId, { docker: e2e.infra.docker, instance: e2e.infra.config.SESSIONFLOW_INSTANCE });
    printTable(`compute services under ${await e2e.infra.containerRuntime()} (one session, one node on the main Docker engine)`, rows);
  } finally {
    await e2e.teardown();
  }
}

if (require.main === module) runBench(main);
