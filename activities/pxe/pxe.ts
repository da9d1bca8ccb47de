import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { countDhcpHostEntries, renderDhcpHostsFile } from '../../domain/pxe/dhcpHosts';
import { domainFailure } from '../../domain/shared/errors';
import { ensureTargetSteps, judgeStep, removeTargetSteps, shellCommand, shellQuote as q, type CommandStep } from '../../domain/pxe/iscsiTarget';
import { planPxeSession, type PxeSessionPlan, type PxeSessionStatus } from '../../domain/pxe/pxe';
import { createPxeStore, type BootServer } from './store';
import { KeyedSerialQueue } from '../../domain/shared/keyedSerialQueue';
import { Coalescer } from '../shared/coalescer';
import type { ExecOptions, ExecResult, SshPool } from '../shared/ssh';
import { pinHostKeyOnFirstUse } from '../shared/hostKeyStore';
import { HostKeyMismatchError, isHostKeyError, type HostKeyError } from '../shared/hostKeys';

interface PxeActivityDeps {
  pool: Pool;
  ssh: SshPool;
  /** A boot server without a pinned host key gets the key it presents first pinned; false: it is refused. */
  trustOnFirstUse: boolean;
  /** How long a DHCP rewrite waits for other sessions' changes before it renders the file. */
  dhcpCoalesceWindowMs?: number;
}

interface DhcpSyncResult {
  entries: number;
  /** False when the rendered file equals the one in place: no dhcpd restart then. */
  reloaded: boolean;
}

export interface AdapterStatus {
  dhcp: { service_running: boolean; config_present: boolean; config_valid: boolean; host_entries: number; detail: string };
  tftp: { service_running: boolean; root_present: boolean; script_count: number };
}

/** Exit codes our remote scripts use to say what went wrong. */
const exitImageMissing = 66;
const exitDhcpInvalid = 65;

/**
 * The boot-server side of PXE sessions, over SSH: the session's disk, its iSCSI target, its
 * iPXE script under the TFTP root and its DHCP host entry. Every "ensure" finds its own earlier
 * work (names derive from the machine) and every "remove" tolerates a resource already gone.
 */
export function createPxeActivities({ pool, ssh, trustOnFirstUse, dhcpCoalesceWindowMs }: PxeActivityDeps) {
  const store = createPxeStore(pool);
  // Per boot server, in this worker: targetcli commands one at a time, DHCP rewrites one at a time.
  const perServer = new KeyedSerialQueue();
  // Concurrent starts arrive staggered by their earlier steps; a short window lets one dhcpd
  // restart serve all of them for the price of a fraction of a second per start.
  const dhcpSync = new Coalescer<DhcpSyncResult>((bootServerId) => perServer.run(`dhcp:${bootServerId}`, () => syncDhcpHosts(bootServerId)), dhcpCoalesceWindowMs ?? 200);

  async function bootServer(id: string): Promise<BootServer> {
    const server = await store.bootServer(id);
    if (!server) throw domainFailure('NotFound', `no boot server ${id}`);
    if (trustOnFirstUse) server.ssh.hostKey.pinOnFirstUse = (presented) => pinHostKeyOnFirstUse(pool, 'pxe_boot_servers', id, presented);
    return server;
  }

  const exec = (server: BootServer, command: string, options?: ExecOptions): Promise<ExecResult> =>
    ssh.exec(server.ssh, command, options).catch((err: unknown) => {
      throw isHostKeyError(err) ? hostKeyFailure(server, err) : err;
    });

  async function execOk(server: BootServer, what: string, command: string, options?: ExecOptions): Promise<ExecResult> {
    const result = await exec(server, command, options);
    if (result.code !== 0) throw commandFailed(server, what, result);
    return result;
  }

  /** Runs driver steps in order; a step whose output says "already so" counts as done. */
  async function runSteps(server: BootServer, what: string, steps: CommandStep[]): Promise<void> {
    for (const step of steps) {
      const result = await exec(server, shellCommand(step.argv));
      const outcome = judgeStep(step, result.code, result.stdout + result.stderr);
      if (outcome === 'fallback' && step.fallback) await execOk(server, what, shellCommand(step.fallback.argv));
      else if (outcome === 'failed') throw commandFailed(server, `${what}: ${step.argv.slice(0, 4).join(' ')}`, result);
    }
  }

  /**
   * targetcli takes a global lock and fails a second concurrent process, so its commands run
   * one at a time per boot server. tgtd serialises requests itself, and each machine owns its
   * target id, so tgt sessions proceed side by side.
   */
  function serialisedIfNeeded(server: BootServer, task: () => Promise<void>): Promise<void> {
    return server.targetDriver === 'targetcli' ? perServer.run(`target:${server.id}`, task) : task();
  }

  async function syncDhcpHosts(bootServerId: string): Promise<DhcpSyncResult> {
    const server = await bootServer(bootServerId);
    const entries = await store.dhcpEntries(bootServerId);
    const file = q(server.dhcpHostsFile);
    const pending = q(`${server.dhcpHostsFile}.reload-pending`);
    // Validate the candidate with dhcpd itself before it replaces the live file; a restart
    // that failed last time is still owed even when the file is already right.
    const script = [
      'set -e',
      `mkdir -p "$(dirname ${file})"`,
      `tmp=$(mktemp ${file}.XXXXXX)`,
      'cat > "$tmp"',
      `if ! out=$(dhcpd -t -cf "$tmp" 2>&1); then rm -f "$tmp"; echo "$out" >&2; exit ${exitDhcpInvalid}; fi`,
      `if [ -f ${file} ] && cmp -s "$tmp" ${file} && [ ! -e ${pending} ]; then rm -f "$tmp"; echo unchanged; exit 0; fi`,
      `chmod 0644 "$tmp"; mv -f "$tmp" ${file}; touch ${pending}`,
      `( ${server.dhcpReloadCommand} ) </dev/null`,
      `rm -f ${pending}; echo reloaded`,
    ].join('\n');
    const result = await exec(server, script, { stdin: renderDhcpHostsFile(server.name, entries), timeoutMs: 60_000 });
    if (result.code === exitDhcpInvalid) throw domainFailure('DhcpConfigInvalid', `dhcpd -t rejected the hosts file: ${lastLines(result.stderr)}`, { boot_server_id: server.id });
    if (result.code !== 0) throw commandFailed(server, 'rewriting the DHCP hosts file and restarting dhcpd', result);
    return { entries: entries.length, reloaded: result.stdout.includes('reloaded') };
  }

  return {
    /** Validates machine, image and boot server and fixes every name the saga will use. */
    async preparePxeSession({ sessionId }: { sessionId: string }): Promise<PxeSessionPlan> {
      const row = await store.sessionSources(sessionId);
      if (!row?.machine_id) throw domainFailure('MachineNotFound', `session ${sessionId} has no machine`);
      if (row.image_status !== 'READY' || !row.raw_filename) {
        throw domainFailure('ImageNotReady', `image ${row.image_name ?? ''} is ${row.image_status ?? 'missing'}`, { image_status: row.image_status });
      }
      const server = await bootServer(row.boot_server_id);
      return planPxeSession({
        sessionId,
        machine: { id: row.machine_id, name: row.machine_name, mac: row.mac, ip: row.ip, tid: row.tid },
        image: { rawPath: `${server.imageDir.replace(/\/+$/, '')}/${row.raw_filename}` },
        bootServer: server,
      });
    },

    /** The session's own writable disk: a reflink (or sparse) copy of the image. */
    async ensureSessionDisk(plan: PxeSessionPlan): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      const disk = q(plan.target.diskPath);
      const result = await exec(server, [
        'set -e',
        `[ -f ${disk} ] && exit 0`,
        `[ -f ${q(plan.imagePath)} ] || { echo "image file ${plan.imagePath} is missing" >&2; exit ${exitImageMissing}; }`,
        `mkdir -p "$(dirname ${disk})"`,
        `cp --reflink=auto --sparse=always ${q(plan.imagePath)} ${disk}.partial`,
        `mv -f ${disk}.partial ${disk}`,
      ].join('\n'), { timeoutMs: 30 * 60_000 });
      if (result.code === exitImageMissing) throw domainFailure('ImageNotReady', lastLines(result.stderr));
      if (result.code !== 0) throw commandFailed(server, 'copying the image for the session disk', result);
    },

    async removeSessionDisk(plan: PxeSessionPlan): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      await execOk(server, 'removing the session disk', `rm -f ${q(plan.target.diskPath)} ${q(`${plan.target.diskPath}.partial`)}`);
    },

    async ensureIscsiTarget(plan: PxeSessionPlan): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      await serialisedIfNeeded(server, () => runSteps(server, 'creating the iSCSI target', ensureTargetSteps(server.targetDriver, plan.target)));
    },

    async removeIscsiTarget(plan: PxeSessionPlan): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      await serialisedIfNeeded(server, () => runSteps(server, 'removing the iSCSI target', removeTargetSteps(server.targetDriver, plan.target)));
    },

    /** Written beside itself and renamed: tftpd never serves half a script. World-readable for --secure. */
    async writeTftpScript({ plan, script }: { plan: PxeSessionPlan; script: string }): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      const file = q(`${server.tftpRoot}/${plan.scriptPath}`);
      await execOk(server, 'writing the iPXE script', [
        'set -e',
        `mkdir -p "$(dirname ${file})"`,
        `tmp=$(mktemp ${file}.XXXXXX)`,
        'cat > "$tmp"',
        'chmod 0644 "$tmp"',
        `mv -f "$tmp" ${file}`,
      ].join('\n'), { stdin: script });
    },

    async deleteTftpScript(plan: PxeSessionPlan): Promise<void> {
      const server = await bootServer(plan.bootServerId);
      await execOk(server, 'deleting the iPXE script', `rm -f ${q(`${server.tftpRoot}/${plan.scriptPath}`)}`);
    },

    async addDhcpHost(plan: PxeSessionPlan): Promise<DhcpSyncResult> {
      await store.setDhcpEntry(plan.sessionId, true);
      return dhcpSync.request(plan.bootServerId);
    },

    async removeDhcpHost(plan: PxeSessionPlan): Promise<DhcpSyncResult> {
      await store.setDhcpEntry(plan.sessionId, false);
      return dhcpSync.request(plan.bootServerId);
    },

    async recordPxeSessionStatus(input: { sessionId: string; status: PxeSessionStatus; error?: { type: string; message: string; step?: string }; bootScript?: string | null }): Promise<void> {
      await store.setSessionStatus(input.sessionId, input.status, { error: input.error, bootScript: input.bootScript });
    },

    /**
     * Checks the image file on its boot server and converts it to raw with qemu-img when it is
     * not raw already, heartbeating the progress; the row ends READY or ERROR with the cause.
     */
    async prepareImage({ imageId }: { imageId: string }): Promise<{ status: 'READY' | 'ERROR'; error?: string }> {
      const image = await store.image(imageId, undefined);
      if (!image) throw domainFailure('ImageNotFound', `no image ${imageId}`);
      const server = await bootServer(image.boot_server_id);
      const source = `${server.imageDir.replace(/\/+$/, '')}/${image.filename}`;
      const fail = async (error: string) => {
        await store.markImageFailed(imageId, error);
        return { status: 'ERROR' as const, error };
      };
      const found = await exec(server, `stat -L -c %s ${q(source)}`);
      if (found.code !== 0) return fail(`the file ${source} is not on boot server ${server.name}: ${lastLines(found.stderr)}`);

      let rawFilename = image.filename;
      if (image.format !== 'raw') {
        rawFilename = `${image.filename.replace(/\.[^./]+$/, '')}.raw`;
        await store.markImageConverting(imageId);
        const target = `${server.imageDir.replace(/\/+$/, '')}/${rawFilename}`;
        let lastWritten = 0;
        const converted = await exec(server, `qemu-img convert -p -f ${q(image.format)} -O raw ${q(source)} ${q(`${target}.partial`)} && mv -f ${q(`${target}.partial`)} ${q(target)}`, {
          timeoutMs: 2 * 60 * 60_000,
          onStdout: (chunk) => {
            const percents = [...chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
            const percent = Number(percents.at(-1)?.[1] ?? NaN);
            if (Number.isNaN(percent)) return;
            Context.current().heartbeat({ percent });
            if (percent - lastWritten >= 5 || percent === 100) {
              lastWritten = percent;
              void store.setImageProgress(imageId, percent).catch(() => undefined);
            }
          },
        });
        if (converted.code !== 0) return fail(`qemu-img convert failed (exit ${converted.code}): ${lastLines(converted.stderr || converted.stdout)}`);
      }
      const size = await execOk(server, 'measuring the raw image', `stat -L -c %s ${q(`${server.imageDir.replace(/\/+$/, '')}/${rawFilename}`)}`);
      await store.markImageReady(imageId, rawFilename, Number(size.stdout.trim()));
      return { status: 'READY' };
    },

    async markImageFailed({ imageId, error }: { imageId: string; error: string }): Promise<void> {
      await store.markImageFailed(imageId, error);
    },

    /** DHCP (service running, config valid, host entries) and TFTP (service running, root present, scripts). */
    async checkBootServerAdapters({ bootServerId }: { bootServerId: string }): Promise<AdapterStatus> {
      const server = await bootServer(bootServerId);
      const file = q(server.dhcpHostsFile);
      const root = q(server.tftpRoot);
      const flag = (name: string, test: string) => `if ${test}; then echo ${name}=1; else echo ${name}=0; fi`;
      const result = await execOk(server, 'checking the DHCP and TFTP services', [
        flag('dhcp_running', `( ${server.dhcpServiceCheck} ) >/dev/null 2>&1 </dev/null`),
        flag('dhcp_present', `[ -f ${file} ]`),
        `if [ -f ${file} ]; then out=$(dhcpd -t -cf ${file} 2>&1) && echo dhcp_valid=1 || { echo dhcp_valid=0; echo "$out" | tail -n 3 | sed 's/^/dhcp_detail=/'; }; else echo dhcp_valid=0; fi`,
        flag('tftp_running', `( ${server.tftpServiceCheck} ) >/dev/null 2>&1 </dev/null`),
        flag('tftp_root', `[ -d ${root} ]`),
        `echo tftp_scripts=$(find ${root}/machines -maxdepth 1 -name '*.ipxe' -type f 2>/dev/null | wc -l)`,
        `echo ---; [ -f ${file} ] && cat ${file} || true`,
      ].join('\n'));
      const [head = '', hostsFile = ''] = result.stdout.split('\n---\n');
      const values = new Map<string, string>();
      const details: string[] = [];
      for (const line of head.split('\n')) {
        const [key, ...rest] = line.split('=');
        if (key === 'dhcp_detail') details.push(rest.join('='));
        else if (key) values.set(key, rest.join('='));
      }
      const on = (key: string) => values.get(key) === '1';
      return {
        dhcp: { service_running: on('dhcp_running'), config_present: on('dhcp_present'), config_valid: on('dhcp_valid'), host_entries: countDhcpHostEntries(hostsFile), detail: details.join('\n') },
        tftp: { service_running: on('tftp_running'), root_present: on('tftp_root'), script_count: Number(values.get('tftp_scripts') ?? 0) },
      };
    },
  };
}

export type PxeActivities = ReturnType<typeof createPxeActivities>;

function commandFailed(server: BootServer, what: string, result: ExecResult) {
  return domainFailure('BootServerCommandFailed', `${what} on ${server.name} failed (exit ${result.code}): ${lastLines(result.stderr || result.stdout)}`, {
    boot_server_id: server.id,
    exit_code: result.code,
  });
}

/** Non-retryable: another attempt meets the same key, and only an admin can decide to trust it. */
function hostKeyFailure(server: BootServer, err: HostKeyError) {
  return domainFailure(err.code, `boot server ${server.name}: ${err.message}`, {
    boot_server_id: server.id,
    pinned_fingerprint: err instanceof HostKeyMismatchError ? err.pinned.fingerprint : null,
    presented_fingerprint: err.presented?.fingerprint ?? null,
  });
}

function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}
