import { diskLun, ensureTargetSteps, judgeStep, removeTargetSteps, shellCommand, type TargetSpec } from '../../../domain/pxe/iscsiTarget';

const spec: TargetSpec = {
  tid: 7,
  targetIqn: 'iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55',
  initiatorIqn: 'iqn.2025-01.dev.sessionflow:initiator-00-11-22-33-44-55',
  diskPath: '/srv/images/sessions/s1.img',
  backstoreName: 'sf-00-11-22-33-44-55',
};
const lines = (steps: { argv: string[] }[]) => steps.map((s) => shellCommand(s.argv));

describe('the tgt driver', () => {
  it('creates the target, LUN 1 on the session disk, and the initiator ACL', () => {
    expect(lines(ensureTargetSteps('tgt', spec))).toEqual([
      'tgtadm --lld iscsi --mode target --op new --tid 7 --targetname iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55',
      'tgtadm --lld iscsi --mode logicalunit --op new --tid 7 --lun 1 --backing-store /srv/images/sessions/s1.img',
      'tgtadm --lld iscsi --mode target --op bind --tid 7 --initiator-name iqn.2025-01.dev.sessionflow:initiator-00-11-22-33-44-55',
    ]);
  });

  it('tears down in reverse: unbind, delete the LU, delete the target', () => {
    expect(lines(removeTargetSteps('tgt', spec))).toEqual([
      'tgtadm --lld iscsi --mode target --op unbind --tid 7 --initiator-name iqn.2025-01.dev.sessionflow:initiator-00-11-22-33-44-55',
      'tgtadm --lld iscsi --mode logicalunit --op delete --tid 7 --lun 1',
      'tgtadm --lld iscsi --mode target --op delete --tid 7',
    ]);
  });

  it('talks to a tgtd on its own control port when the boot server names one', () => {
    expect(lines(ensureTargetSteps('tgt', { ...spec, tgtControlPort: 42 }))[0]).toMatch(/^tgtadm -C 42 --lld iscsi /);
  });

  it('exports the disk as LUN 1 (LUN 0 is the controller); LIO as LUN 0', () => {
    expect(diskLun('tgt')).toBe(1);
    expect(diskLun('targetcli')).toBe(0);
  });

  it('treats "already exists" (exit 22) as done when creating', () => {
    const [target, lu, bind] = ensureTargetSteps('tgt', spec);
    expect(judgeStep(target!, 22, 'tgtadm: this target already exists\n')).toBe('already');
    expect(judgeStep(lu!, 22, 'tgtadm: this logical unit number already exists\n')).toBe('already');
    expect(judgeStep(bind!, 22, 'tgtadm: this access control rule already exists\n')).toBe('already');
    expect(judgeStep(lu!, 22, 'tgtadm: invalid request\n')).toBe('failed');
    expect(judgeStep(target!, 0, '')).toBe('done');
  });

  it('treats a resource already gone as done when removing, and forces the delete of a target a killed client still holds', () => {
    const [unbind, lu, target] = removeTargetSteps('tgt', spec);
    expect(judgeStep(unbind!, 22, 'tgtadm: this access control rule does not exist\n')).toBe('already');
    expect(judgeStep(unbind!, 22, "tgtadm: can't find the target\n")).toBe('already');
    expect(judgeStep(lu!, 22, "tgtadm: can't find the logical unit\n")).toBe('already');
    expect(judgeStep(target!, 22, "tgtadm: can't find the target\n")).toBe('already');
    expect(judgeStep(target!, 22, 'tgtadm: this target is still active\n')).toBe('fallback');
    expect(shellCommand(target!.fallback!.argv)).toBe('tgtadm --lld iscsi --mode target --op delete --force --tid 7');
    expect(judgeStep(target!, 107, 'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected\n')).toBe('failed');
  });

  it('does not take "already exists" as success when removing', () => {
    const [unbind] = removeTargetSteps('tgt', spec);
    expect(judgeStep(unbind!, 22, 'tgtadm: this target already exists\n')).toBe('failed');
  });
});

describe('the targetcli driver', () => {
  it('creates a fileio backstore, the target, its LUN and the ACL, then saves the configuration explicitly', () => {
    expect(lines(ensureTargetSteps('targetcli', spec))).toEqual([
      'targetcli /backstores/fileio create name=sf-00-11-22-33-44-55 file_or_dev=/srv/images/sessions/s1.img',
      'targetcli /iscsi create iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55',
      'targetcli /iscsi/iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55/tpg1/luns create /backstores/fileio/sf-00-11-22-33-44-55',
      'targetcli /iscsi/iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55/tpg1/acls create iqn.2025-01.dev.sessionflow:initiator-00-11-22-33-44-55',
      'targetcli saveconfig',
    ]);
  });

  it('deletes the target, then its backstore, then saves', () => {
    expect(lines(removeTargetSteps('targetcli', spec))).toEqual([
      'targetcli /iscsi delete iqn.2025-01.dev.sessionflow:target-00-11-22-33-44-55',
      'targetcli /backstores/fileio delete sf-00-11-22-33-44-55',
      'targetcli saveconfig',
    ]);
  });

  it('treats "already exists" as done when creating and "No storage object named" as done when removing, never the other way round', () => {
    const [backstore, target] = ensureTargetSteps('targetcli', spec);
    const [deleteTarget, deleteBackstore] = removeTargetSteps('targetcli', spec);
    expect(judgeStep(target!, 1, 'This Target already exists in configFS\n')).toBe('already');
    expect(judgeStep(backstore!, 1, 'Storage object fileio/sf-00-11-22-33-44-55 exists\n')).toBe('already');
    expect(judgeStep(deleteBackstore!, 1, 'No storage object named sf-00-11-22-33-44-55.\n')).toBe('already');
    expect(judgeStep(deleteTarget!, 1, 'No such Target in configfs: /sys/kernel/config/target/iscsi/x\n')).toBe('already');
    expect(judgeStep(backstore!, 1, 'No storage object named sf-00-11-22-33-44-55.\n')).toBe('failed');
    expect(judgeStep(deleteTarget!, 1, 'This Target already exists in configFS\n')).toBe('failed');
  });

  it('never treats a failed saveconfig as done', () => {
    const save = ensureTargetSteps('targetcli', spec).at(-1)!;
    expect(judgeStep(save, 1, 'Could not write /etc/rtslib-fb-target/saveconfig.json\n')).toBe('failed');
  });
});

describe('shell quoting', () => {
  it('quotes arguments with spaces and quotes, and leaves plain ones alone', () => {
    expect(shellCommand(['echo', "it's", 'a b', '/plain/path-1.img'])).toBe(`echo 'it'\\''s' 'a b' /plain/path-1.img`);
  });
});
