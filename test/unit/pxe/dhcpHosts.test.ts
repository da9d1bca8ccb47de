import { countDhcpHostEntries, dhcpHostName, renderDhcpHostEntry, renderDhcpHostsFile } from '../../../domain/pxe/dhcpHosts';

describe('dhcpd host entries', () => {
  it('renders one host block with the normalised MAC and the fixed address', () => {
    expect(renderDhcpHostEntry({ mac: '00-11-22-33-44-AA', ip: '192.168.1.101', machineName: 'test-workstation' })).toBe(
      ['# test-workstation', 'host pxe-00-11-22-33-44-aa {', '  hardware ethernet 00:11:22:33:44:aa;', '  fixed-address 192.168.1.101;', '}'].join('\n'),
    );
    expect(dhcpHostName('00:11:22:33:44:55')).toBe('pxe-00-11-22-33-44-55');
  });

  it('renders the whole file sorted by MAC, so the same sessions give the same bytes', () => {
    const a = { mac: '00:00:00:00:00:02', ip: '10.0.0.2', machineName: 'b' };
    const b = { mac: '00:00:00:00:00:01', ip: '10.0.0.1', machineName: 'a' };
    const file = renderDhcpHostsFile('lab', [a, b]);
    expect(file).toBe(renderDhcpHostsFile('lab', [b, a]));
    expect(file.indexOf('00:00:00:00:00:01')).toBeLessThan(file.indexOf('00:00:00:00:00:02'));
    expect(countDhcpHostEntries(file)).toBe(2);
  });

  it('refuses a MAC or an IP listed twice, which dhcpd itself would accept', () => {
    expect(() => renderDhcpHostsFile('lab', [{ mac: '00:11:22:33:44:55', ip: '10.0.0.1', machineName: 'a' }, { mac: '00-11-22-33-44-55', ip: '10.0.0.2', machineName: 'b' }])).toThrow('listed twice');
    expect(() => renderDhcpHostsFile('lab', [{ mac: '00:11:22:33:44:55', ip: '10.0.0.1', machineName: 'a' }, { mac: '00:11:22:33:44:56', ip: '10.0.0.1', machineName: 'b' }])).toThrow('listed twice');
  });

  it('renders an empty file with only its header when no machine is in a session', () => {
    expect(countDhcpHostEntries(renderDhcpHostsFile('lab', []))).toBe(0);
  });

  it('keeps a machine name from breaking out of its comment line', () => {
    expect(renderDhcpHostEntry({ mac: '00:11:22:33:44:55', ip: '10.0.0.1', machineName: 'evil\nhost x {' }).split('\n')[0]).toBe('# evil host x {');
  });
});
