import { iscsiRootPath, renderGenericBootScript, renderMachineScript, validateIpxeScript } from '../../../domain/pxe/ipxe';

const machine = {
  sessionId: '6f1c2b3a-0000-4000-8000-000000000001',
  machineName: 'test-workstation',
  mac: '00:11:22:33:44:55',
  initiatorIqn: 'iqn.2025-01.dev.sessionflow:initiator-00-11-22-33-44-55',
  portalIp: '192.168.1.10',
  lun: 1,
  targetIqn: 'iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55',
};

describe('the per-machine iPXE script', () => {
  const script = renderMachineScript(machine);

  it('starts exactly with #!ipxe, with no byte-order mark', () => {
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script.charCodeAt(0)).toBe('#'.charCodeAt(0));
  });

  it('sets the initiator name before one sanboot of the iSCSI root path, with a failure branch', () => {
    const lines = script.split('\n');
    const initiator = lines.indexOf(`set initiator-iqn ${machine.initiatorIqn}`);
    const sanboot = lines.indexOf(`sanboot iscsi:192.168.1.10:::1:${machine.targetIqn} || goto failed`);
    expect(initiator).toBeGreaterThan(0);
    expect(sanboot).toBeGreaterThan(initiator);
    expect(lines.filter((l) => l.startsWith('sanboot'))).toHaveLength(1);
    expect(lines).toContain(':failed');
    expect(lines.slice(lines.indexOf(':failed'))).toContain('exit 1');
  });

  it('names the machine and the session in a comment', () => {
    expect(script).toContain('test-workstation (00:11:22:33:44:55)');
    expect(script).toContain(machine.sessionId);
  });

  it('takes the LUN from the driver: LIO exports LUN 0', () => {
    expect(renderMachineScript({ ...machine, lun: 0 })).toContain(`sanboot iscsi:192.168.1.10:::0:${machine.targetIqn}`);
    expect(iscsiRootPath('10.0.0.1', 1, 'iqn.2025-01.x:y')).toBe('iscsi:10.0.0.1:::1:iqn.2025-01.x:y');
  });

  it('passes its own validator', () => {
    expect(validateIpxeScript(script)).toEqual([]);
  });
});

describe('the generic boot.ipxe', () => {
  const script = renderGenericBootScript();

  it('chains the machine script by ${mac:hexhyp} and falls through to the next boot device without one', () => {
    expect(script.startsWith('#!ipxe\n')).toBe(true);
    expect(script).toContain('chain --autofree machines/${mac:hexhyp}.ipxe || goto nomachine');
    const tail = script.split('\n').slice(script.split('\n').indexOf(':nomachine'));
    expect(tail).toContain('exit 1');
    expect(script).not.toContain('poweroff');
  });

  it('does not claim there is no session: a failed machine script lands in the same branch', () => {
    expect(script).not.toMatch(/no session/i);
    expect(validateIpxeScript(script)).toEqual([]);
  });
});

describe('validateIpxeScript', () => {
  const valid = renderMachineScript(machine);
  const messages = (script: string) => validateIpxeScript(script).map((p) => p.message);

  it('reports a missing header', () => {
    expect(validateIpxeScript(valid.replace('#!ipxe\n', ''))[0]).toEqual({ line: 1, message: 'the script must start with #!ipxe' });
  });

  it('reports a byte-order mark before the header', () => {
    expect(messages(`\uFEFF${valid}`)).toContain('the script starts with a byte-order mark before #!ipxe');
  });

  it('reports a malformed root path with the reason', () => {
    expect(messages(valid.replace(':::1:', ':::x:'))).toEqual([expect.stringContaining('LUN "x" is not a number')]);
    expect(messages(valid.replace('iscsi:192.168.1.10:::1:', 'iscsi:192.168.1.10:1:'))).toEqual([expect.stringContaining('malformed root path')]);
    expect(messages(valid.replace(machine.targetIqn, 'target-without-iqn'))).toEqual([expect.stringContaining('is not an iSCSI qualified name')]);
  });

  it('reports a sanboot without an initiator name', () => {
    expect(messages(valid.replace(/^set initiator-iqn .*$/m, ''))).toEqual(['sanboot of an iSCSI disk before "set initiator-iqn"']);
  });

  it('reports unknown commands with their line', () => {
    expect(validateIpxeScript(`${valid}bootme now\n`)).toEqual([{ line: valid.split('\n').length, message: 'unknown command "bootme"' }]);
  });

  it('reports a goto to a missing label', () => {
    expect(messages(valid.replace(':failed', ':other'))).toEqual(['goto to a missing label "failed"']);
  });
});
