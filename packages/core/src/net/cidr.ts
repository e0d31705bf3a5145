import { BlockList, isIP } from 'node:net';

export interface ParsedCidr {
  /** The network address: canonical form, host bits cleared. */
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

const PREFIX_LENGTH_RE = /^(?:0|[1-9][0-9]{0,2})$/;

function ipv4ToBytes(address: string): number[] {
  return address.split('.').map(Number);
}

function ipv6ToBytes(address: string): number[] {
  // The WHATWG URL parser canonicalises IPv6 (lowercase, hex only, embedded IPv4 folded in).
  const canonical = new URL(`http://[${address}]`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.flatMap((group) => {
    const value = Number.parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

function bytesToAddress(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function maskBytes(bytes: number[], prefixLength: number): number[] {
  return bytes.map((byte, index) => {
    const kept = Math.min(8, Math.max(0, prefixLength - index * 8));
    return byte & ((0xff << (8 - kept)) & 0xff);
  });
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128). */
export function parseCidr(value: string): ParsedCidr | null {
  if (typeof value !== 'string') return null;
  const parts = value.split('/');
  if (parts.length > 2) return null;
  const [address = '', prefixText] = parts;
  // Zone ids (fe80::1%eth0) name an interface on this host; they mean nothing in an allowlist.
  if (address.includes('%')) return null;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const maxLength = family === 4 ? 32 : 128;
  let prefixLength = maxLength;
  if (prefixText !== undefined) {
    if (!PREFIX_LENGTH_RE.test(prefixText)) return null;
    prefixLength = Number(prefixText);
    if (prefixLength > maxLength) return null;
  }
  const bytes = family === 4 ? ipv4ToBytes(address) : ipv6ToBytes(address);
  return { address: bytesToAddress(maskBytes(bytes, prefixLength), family), prefixLength, family };
}

export function isValidCidr(value: string): boolean {
  return parseCidr(value) !== null;
}

/** Canonical `address/length`, e.g. `10.0.0.1` → `10.0.0.1/32`, `10.1.2.3/8` → `10.0.0.0/8`. */
export function normalizeCidr(value: string): string {
  const cidr = parseCidr(value);
  if (!cidr) throw new TypeError(`Not an IP address or CIDR range: "${value}"`);
  return `${cidr.address}/${cidr.prefixLength}`;
}

/**
 * True when `ip` falls in any of the ranges; IPv4-mapped IPv6 (`::ffff:10.0.0.1`) matches IPv4 ranges.
 * Fails closed: an empty list, an unparsable ip and unparsable ranges allow nothing, so callers
 * decide "no restriction" themselves before asking.
 */
export function isIpAllowed(ip: string, cidrs: readonly string[]): boolean {
  if (typeof ip !== 'string' || ip.includes('%')) return false;
  const family = isIP(ip);
  if (family !== 4 && family !== 6) return false;
  const blockList = new BlockList();
  for (const value of cidrs) {
    const cidr = parseCidr(value);
    if (cidr) blockList.addSubnet(cidr.address, cidr.prefixLength, cidr.family === 4 ? 'ipv4' : 'ipv6');
  }
  return blockList.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * True when every address of `inner` lies in `outer` (same family, at least as long a prefix, same
 * network). Fails closed on anything unparsable, and an IPv4-mapped IPv6 range never counts as inside
 * an IPv4 one: a narrower allowlist must be provably narrower.
 */
export function isCidrWithin(inner: string, outer: string): boolean {
  const a = parseCidr(inner);
  const b = parseCidr(outer);
  if (!a || !b || a.family !== b.family || a.prefixLength < b.prefixLength) return false;
  const toBytes = a.family === 4 ? ipv4ToBytes : ipv6ToBytes;
  const masked = maskBytes(toBytes(a.address), b.prefixLength);
  const network = toBytes(b.address);
  return masked.every((byte, index) => byte === network[index]);
}
