import { isIpv4, isMac, macFromScriptFilename, macHyphenated, machineScriptPath, normaliseMac } from '../../../domain/pxe/mac';

describe('MAC addresses', () => {
  it.each([
    ['00:11:22:33:44:55'], ['00-11-22-33-44-55'], ['0011.2233.4455'], ['001122334455'], ['00:11:22:33:44:55 '],
  ])('normalises %p to lowercase with colons', (input) => {
    expect(normaliseMac(input)).toBe('00:11:22:33:44:55');
  });

  it('lowercases hexadecimal letters', () => {
    expect(normaliseMac('AA-BB-CC-DD-EE-0F')).toBe('aa:bb:cc:dd:ee:0f');
  });

  it.each([['00:11:22:33:44'], ['00:11:22:33:44:55:66'], ['00:11-22:33:44:55'], ['gg:11:22:33:44:55'], [''], ['0011.2233.44555']])('rejects %p', (input) => {
    expect(normaliseMac(input)).toBeUndefined();
    expect(isMac(input)).toBe(false);
  });

  it('names the machine script after the hyphenated lowercase MAC, as iPXE ${mac:hexhyp} does', () => {
    expect(macHyphenated('00:11:22:33:44:55')).toBe('00-11-22-33-44-55');
    expect(machineScriptPath('00:11:22:AA:BB:CC')).toBe('machines/00-11-22-aa-bb-cc.ipxe');
  });

  it('extracts the MAC from a script file name, with or without its directory', () => {
    expect(macFromScriptFilename('00-11-22-33-44-55.ipxe')).toBe('00:11:22:33:44:55');
    expect(macFromScriptFilename('/srv/tftp/machines/aa-bb-cc-dd-ee-ff.ipxe')).toBe('aa:bb:cc:dd:ee:ff');
  });

  it.each([['boot.ipxe'], ['00-11-22-33-44.ipxe'], ['00-11-22-33-44-55.txt'], ['00:11:22:33:44:55.ipxe'], ['AA-BB-CC-DD-EE-FF.ipxe'], ['']])('finds no MAC in %p', (name) => {
    expect(macFromScriptFilename(name)).toBeUndefined();
  });

  it('round-trips: the file name of a MAC gives the MAC back', () => {
    const mac = '52:54:00:12:34:56';
    expect(macFromScriptFilename(machineScriptPath(mac))).toBe(mac);
  });

  it('accepts dotted-quad IPv4 addresses only', () => {
    expect(isIpv4('192.168.1.101')).toBe(true);
    expect(isIpv4('0.0.0.0')).toBe(true);
    for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4', 'a.b.c.d', '1.2.3.4.5', '']) expect(isIpv4(bad)).toBe(false);
  });
});
