/**
 * The two iSCSI target drivers as exact command lines: targetcli (LIO, production boot
 * servers) and tgt (userspace, hosts without LIO). Each step says which failure texts mean
 * "already in the state we want", so a retried ensure or a repeated teardown succeeds.
 * An activity runs the steps over SSH; this module decides nothing at run time.
 */

export type TargetDriverName = 'targetcli' | 'tgt';

export interface TargetSpec {
  /** tgt needs a numeric target id; sessionflow derives it from the machine (one session each). */
  tid: number;
  targetIqn: string;
  initiatorIqn: string;
  /** The session's own writable disk on the boot server. */
  diskPath: string;
  /** LIO backstore name: unique per machine. */
  backstoreName: string;
  /** tgt only: the control port (`tgtadm -C N`) when a host runs more than one tgtd. */
  tgtControlPort?: number | null;
}

export interface CommandStep {
  argv: string[];
  /** Output (stdout + stderr) that means the wanted state already holds. */
  alreadyDone?: RegExp;
  /** When the output matches `when`, run `argv` instead (e.g. tgt's delete --force). */
  fallback?: { when: RegExp; argv: string[] };
}

/** The LUN a driver exports the disk as: tgt's LUN 0 is its controller. */
export function diskLun(driver: TargetDriverName): number {
  return driver === 'tgt' ? 1 : 0;
}

export function ensureTargetSteps(driver: TargetDriverName, spec: TargetSpec): CommandStep[] {
  return driver === 'tgt' ? tgtEnsure(spec) : targetcliEnsure(spec);
}

export function removeTargetSteps(driver: TargetDriverName, spec: TargetSpec): CommandStep[] {
  return driver === 'tgt' ? tgtRemove(spec) : targetcliRemove(spec);
}

// tgt: every error exits 22 with a one-line text on stderr.
const tgtExists = /already exists/;
const tgtMissing = /can't find the (target|logical unit)|access control rule does not exist/;
const tgtBusy = /still active|is active|busy/i;

function tgtadm(spec: TargetSpec, ...args: string[]): string[] {
  const control = spec.tgtControlPort != null ? ['-C', String(spec.tgtControlPort)] : [];
  return ['tgtadm', ...control, '--lld', 'iscsi', ...args];
}

function tgtEnsure(spec: TargetSpec): CommandStep[] {
  const tid = String(spec.tid);
  return [
    { argv: tgtadm(spec, '--mode', 'target', '--op', 'new', '--tid', tid, '--targetname', spec.targetIqn), alreadyDone: tgtExists },
    { argv: tgtadm(spec, '--mode', 'logicalunit', '--op', 'new', '--tid', tid, '--lun', '1', '--backing-store', spec.diskPath), alreadyDone: tgtExists },
    { argv: tgtadm(spec, '--mode', 'target', '--op', 'bind', '--tid', tid, '--initiator-name', spec.initiatorIqn), alreadyDone: tgtExists },
  ];
}

function tgtRemove(spec: TargetSpec): CommandStep[] {
  const tid = String(spec.tid);
  const deleteTarget = (...force: string[]) => tgtadm(spec, '--mode', 'target', '--op', 'delete', ...force, '--tid', tid);
  return [
    { argv: tgtadm(spec, '--mode', 'target', '--op', 'unbind', '--tid', tid, '--initiator-name', spec.initiatorIqn), alreadyDone: tgtMissing },
    // A client still logged in keeps the LU busy; the forced target delete below takes it along.
    { argv: tgtadm(spec, '--mode', 'logicalunit', '--op', 'delete', '--tid', tid, '--lun', '1'), alreadyDone: new RegExp(`${tgtMissing.source}|${tgtBusy.source}`, 'i') },
    // A VM killed without logging out leaves a session behind: only --force deletes then.
    { argv: deleteTarget(), alreadyDone: tgtMissing, fallback: { when: tgtBusy, argv: deleteTarget('--force') } },
  ];
}

// targetcli: one command per process, exit 1 on error; configuration is saved only on request.
const lioExists = /already exists|exists in configFS|Storage object \S+ exists/i;
const lioMissing = /No storage object named|No such Target|does not exist|No such path/i;

function targetcliEnsure(spec: TargetSpec): CommandStep[] {
  const tpg = `/iscsi/${spec.targetIqn}/tpg1`;
  return [
    { argv: ['targetcli', '/backstores/fileio', 'create', `name=${spec.backstoreName}`, `file_or_dev=${spec.diskPath}`], alreadyDone: lioExists },
    { argv: ['targetcli', '/iscsi', 'create', spec.targetIqn], alreadyDone: lioExists },
    { argv: ['targetcli', `${tpg}/luns`, 'create', `/backstores/fileio/${spec.backstoreName}`], alreadyDone: lioExists },
    { argv: ['targetcli', `${tpg}/acls`, 'create', spec.initiatorIqn], alreadyDone: lioExists },
    { argv: ['targetcli', 'saveconfig'] },
  ];
}

function targetcliRemove(spec: TargetSpec): CommandStep[] {
  return [
    // Deleting the target takes its LUNs, ACLs and portals along.
    { argv: ['targetcli', '/iscsi', 'delete', spec.targetIqn], alreadyDone: lioMissing },
    { argv: ['targetcli', '/backstores/fileio', 'delete', spec.backstoreName], alreadyDone: lioMissing },
    { argv: ['targetcli', 'saveconfig'] },
  ];
}

type StepOutcome = 'done' | 'already' | 'fallback' | 'failed';

/** How to read a step's exit code and output. */
export function judgeStep(step: CommandStep, exitCode: number, output: string): StepOutcome {
  if (exitCode === 0) return 'done';
  if (step.fallback?.when.test(output)) return 'fallback';
  if (step.alreadyDone?.test(output)) return 'already';
  return 'failed';
}

/** POSIX shell quoting: commands travel over SSH as one string. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}
