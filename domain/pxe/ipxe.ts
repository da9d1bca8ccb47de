/**
 * iPXE scripts: the per-machine script that sanboots the session's iSCSI disk, the generic
 * `boot.ipxe` every machine gets from DHCP, and a validator that says what is wrong with one.
 * Pure text: the workflow renders, an activity writes.
 */

interface MachineScriptInput {
  sessionId: string;
  machineName: string;
  mac: string;
  initiatorIqn: string;
  portalIp: string;
  /** The driver decides: LIO exports the disk as LUN 0, tgt as LUN 1 (LUN 0 is its controller). */
  lun: number;
  targetIqn: string;
}

/** `iscsi:<server>:[protocol]:[port]:[lun]:<target iqn>`, the root path iPXE's sanboot takes. */
export function iscsiRootPath(portalIp: string, lun: number, targetIqn: string): string {
  return `iscsi:${portalIp}:::${lun}:${targetIqn}`;
}

export function renderMachineScript(input: MachineScriptInput): string {
  return [
    '#!ipxe',
    `# sessionflow PXE session ${input.sessionId}: ${oneLine(input.machineName)} (${input.mac})`,
    `set initiator-iqn ${input.initiatorIqn}`,
    `sanboot ${iscsiRootPath(input.portalIp, input.lun, input.targetIqn)} || goto failed`,
    // sanboot only returns when the booted disk hands control back.
    'exit 0',
    ':failed',
    'echo sessionflow: SAN boot failed: ${errno}',
    // Debian's 2019 iPXE ROM has no poweroff: hand over to the next boot device.
    'exit 1',
    '',
  ].join('\n');
}

/**
 * The fallback every machine loads: chain the machine's own script, and when there is none
 * (or it failed) go on to the next boot device. The failure branch cannot tell "no session"
 * from "the session's boot failed" (both land there), so it does not claim either.
 */
export function renderGenericBootScript(): string {
  return [
    '#!ipxe',
    '# sessionflow: each machine in a PXE session has machines/<mac>.ipxe next to this file',
    'chain --autofree machines/${mac:hexhyp}.ipxe || goto nomachine',
    'exit 0',
    ':nomachine',
    'echo sessionflow: no usable boot script for ${mac:hexhyp}; trying the next boot device',
    'exit 1',
    '',
  ].join('\n');
}

const knownCommands = new Set([
  'autoboot', 'boot', 'chain', 'choose', 'clear', 'colour', 'console', 'cpair', 'cpuid', 'dhcp', 'echo', 'exit', 'goto',
  'ifclose', 'ifconf', 'ifopen', 'ifstat', 'imgexec', 'imgfetch', 'imgfree', 'imgload', 'imgselect', 'imgstat', 'imgverify',
  'inc', 'initrd', 'isset', 'iseq', 'item', 'kernel', 'login', 'menu', 'module', 'nslookup', 'ntp', 'param', 'params', 'ping',
  'poweroff', 'prompt', 'read', 'reboot', 'route', 'sanboot', 'sanhook', 'sanunhook', 'set', 'shell', 'show', 'sleep', 'sync',
  'time', 'vlan', 'cpuid',
]);

interface ScriptProblem {
  line: number;
  message: string;
}

/**
 * What is wrong with a script, line by line (empty when nothing is): a missing `#!ipxe`
 * header (a byte-order mark counts as missing — iPXE compares the first bytes), unknown
 * commands, malformed iSCSI root paths, a sanboot without an initiator name, gotos to labels
 * that do not exist.
 */
export function validateIpxeScript(script: string): ScriptProblem[] {
  const problems: ScriptProblem[] = [];
  const lines = script.split(/\r?\n/);
  if (lines[0]?.trimEnd() !== '#!ipxe') {
    problems.push({ line: 1, message: script.startsWith('\uFEFF') ? 'the script starts with a byte-order mark before #!ipxe' : 'the script must start with #!ipxe' });
  }
  const labels = new Set(lines.filter((l) => /^:\S+/.test(l.trim())).map((l) => l.trim().slice(1)));
  let initiatorSet = false;
  lines.forEach((raw, index) => {
    const line = index + 1;
    const text = raw.trim();
    if (index === 0 || text === '' || text.startsWith('#') || text.startsWith(':')) return;
    for (const command of text.split(/\s*(?:\|\||&&)\s*/)) {
      const [name, ...args] = command.split(/\s+/);
      if (!name) continue;
      if (!knownCommands.has(name)) {
        problems.push({ line, message: `unknown command "${name}"` });
        continue;
      }
      if (name === 'set' && args[0] === 'initiator-iqn' && args[1]) initiatorSet = true;
      if (name === 'goto' && args[0] && !labels.has(args[0])) problems.push({ line, message: `goto to a missing label "${args[0]}"` });
      if (name === 'sanboot' || name === 'sanhook') {
        const root = args.find((arg) => !arg.startsWith('-'));
        if (root?.startsWith('iscsi:')) {
          const why = rootPathProblem(root);
          if (why) problems.push({ line, message: `malformed root path "${root}": ${why}` });
          if (!initiatorSet) problems.push({ line, message: 'sanboot of an iSCSI disk before "set initiator-iqn"' });
        } else if (!root) {
          problems.push({ line, message: `${name} without a root path` });
        }
      }
    }
  });
  return problems;
}

function rootPathProblem(root: string): string | undefined {
  // iscsi:<server>:<protocol>:<port>:<lun>:<iqn> — the iqn itself contains colons.
  const parts = root.split(':');
  if (parts.length < 6) return 'expected iscsi:<server>:<protocol>:<port>:<lun>:<target iqn>';
  const [, server, protocol, port, lun] = parts;
  const iqn = parts.slice(5).join(':');
  if (!server) return 'no server';
  if (protocol && protocol !== '6') return `unknown protocol "${protocol}"`;
  if (port && !/^\d{1,5}$/.test(port)) return `port "${port}" is not a number`;
  if (lun && !/^\d+$/.test(lun)) return `LUN "${lun}" is not a number`;
  if (!/^iqn\.\d{4}-\d{2}\.[^:\s]+(:\S+)?$/.test(iqn)) return `"${iqn}" is not an iSCSI qualified name`;
  return undefined;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
