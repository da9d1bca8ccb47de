/**
 * MAC addresses as people write them (00:11:22:33:44:55, 00-11-22-33-44-55, 0011.2233.4455,
 * 001122334455, any case) and the one form sessionflow stores: lowercase with colons.
 */
const notations = [
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})\.([0-9a-f]{2})([0-9a-f]{2})$/i,
  /^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i,
];

/** The canonical `aa:bb:cc:dd:ee:ff` form, or undefined when `input` is no MAC address. */
export function normaliseMac(input: string): string | undefined {
  const text = input.trim();
  for (const pattern of notations) {
    const match = pattern.exec(text);
    // One separator throughout: 00:11-22:… is a typo, not a notation.
    if (match && (pattern !== notations[0] || new Set(text.replace(/[0-9a-f]/gi, '')).size === 1)) {
      return match.slice(1, 7).join(':').toLowerCase();
    }
  }
  return undefined;
}

export function isMac(input: string): boolean {
  return normaliseMac(input) !== undefined;
}

/** iPXE's `${mac:hexhyp}`: lowercase, hyphens. */
export function macHyphenated(mac: string): string {
  const canonical = normaliseMac(mac);
  if (!canonical) throw new Error(`not a MAC address: ${mac}`);
  return canonical.replace(/:/g, '-');
}

/** The machine's script under the TFTP root, as the generic boot.ipxe chains it. */
export function machineScriptPath(mac: string): string {
  return `machines/${macHyphenated(mac)}.ipxe`;
}

/** The MAC a script's file name belongs to (`…/00-11-22-33-44-55.ipxe`), or undefined. */
export function macFromScriptFilename(filename: string): string | undefined {
  const base = filename.split('/').pop() ?? '';
  const match = /^([0-9a-f]{2}(?:-[0-9a-f]{2}){5})\.ipxe$/.exec(base);
  return match?.[1] ? normaliseMac(match[1]) : undefined;
}

/** Dotted-quad IPv4, each part 0–255 without leading zeros. */
export function isIpv4(input: string): boolean {
  const parts = input.split('.');
  return parts.length === 4 && parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255);
}
