import { macHyphenated, normaliseMac } from './mac';

/**
 * The dhcpd hosts file of one boot server, rendered whole from the database: one `host`
 * block per machine in a PXE session. dhcpd accepts the same MAC under two host names, so
 * uniqueness is checked here, before `dhcpd -t` ever sees the file.
 */
export interface DhcpHostEntry {
  mac: string;
  ip: string;
  machineName: string;
}

export function dhcpHostName(mac: string): string {
  return `pxe-${macHyphenated(mac)}`;
}

export function renderDhcpHostEntry(entry: DhcpHostEntry): string {
  const mac = normaliseMac(entry.mac);
  if (!mac) throw new Error(`not a MAC address: ${entry.mac}`);
  return [
    `# ${entry.machineName.replace(/[\r\n]+/g, ' ')}`,
    `host ${dhcpHostName(mac)} {`,
    `  hardware ethernet ${mac};`,
    `  fixed-address ${entry.ip};`,
    '}',
  ].join('\n');
}

export function renderDhcpHostsFile(bootServerName: string, entries: DhcpHostEntry[]): string {
  const byMac = new Map<string, DhcpHostEntry>();
  const ips = new Set<string>();
  for (const entry of entries) {
    const mac = normaliseMac(entry.mac) ?? entry.mac;
    if (byMac.has(mac)) throw new Error(`MAC ${mac} is listed twice`);
    if (ips.has(entry.ip)) throw new Error(`IP ${entry.ip} is listed twice`);
    byMac.set(mac, entry);
    ips.add(entry.ip);
  }
  // Sorted, so the same sessions always give the same bytes (and no needless restart).
  const blocks = [...byMac.keys()].sort().map((mac) => renderDhcpHostEntry(byMac.get(mac)!));
  return [
    `# sessionflow: PXE hosts of boot server ${bootServerName.replace(/[\r\n]+/g, ' ')}; rewritten whole on every session start and stop.`,
    ...blocks,
    '',
  ].join('\n');
}

/** How many `host` blocks a hosts file declares. */
export function countDhcpHostEntries(text: string): number {
  return text.split('\n').filter((line) => /^\s*host\s+\S+\s*\{/.test(line)).length;
}
