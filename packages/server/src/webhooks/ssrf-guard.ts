// Keeps webhook deliveries out of the deployment's own network (SSRF). An
// endpoint URL is checked when it is saved (schemes, literal addresses) and
// again on every delivery, after DNS resolution, by a `lookup` function that
// Node's HTTP client calls while connecting: the address checked is the
// address connected to, so a DNS answer that changes between a check and the
// connection (rebinding) cannot slip through. Redirects are never followed.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/** Ranges a webhook may not reach unless KEYWARD_WEBHOOK_ALLOW_PRIVATE=true. */
const REFUSED_RANGES: ReadonlyArray<[string, number, 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'], // "this network", unspecified
  ['10.0.0.0', 8, 'ipv4'], // private
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT, shared address space
  ['127.0.0.0', 8, 'ipv4'], // loopback
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'], // private
  ['192.0.0.0', 24, 'ipv4'], // IETF protocol assignments
  ['192.0.2.0', 24, 'ipv4'], // documentation
  ['192.168.0.0', 16, 'ipv4'], // private
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['198.51.100.0', 24, 'ipv4'], // documentation
  ['203.0.113.0', 24, 'ipv4'], // documentation
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 96, 'ipv6'], // unspecified, loopback and the old IPv4-compatible form
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64
  ['100::', 64, 'ipv6'], // discard
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['fc00::', 7, 'ipv6'], // unique-local
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
  ['ff00::', 8, 'ipv6'], // multicast
];

// IPv4-mapped addresses (::ffff:a.b.c.d) are refused in isPublicAddress: in a
// BlockList an IPv6 rule for them would match every plain IPv4 address too.
const refused = new BlockList();
for (const [address, prefix, family] of REFUSED_RANGES) refused.addSubnet(address, prefix, family);

function ipv6Groups(address: string): number[] {
  const canonical = new URL(`http://[${address}]`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  return [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups].map((group) => Number.parseInt(group, 16));
}

/** An IPv4 address carried inside an IPv6 one (NAT64 64:ff9b::/96, 6to4 2002::/16), which would reach that IPv4 host. */
function embeddedIpv4(address: string): string | null {
  const groups = ipv6Groups(address);
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0)) return v4(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return v4(groups[1]!, groups[2]!);
  return null;
}

/** True when a delivery may connect to this address: public unicast only. */
export function isPublicAddress(address: string): boolean {
  // A zone id names an interface of this host: link-local by definition.
  if (address.includes('%')) return false;
  const family = isIP(address);
  if (family === 4) return !refused.check(address, 'ipv4');
  if (family !== 6) return false;
  if (refused.check(address, 'ipv6')) return false;
  // IPv4-mapped, refused as a whole: a public IPv4 host is reached by its IPv4 address.
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) return false;
  const inner = embeddedIpv4(address);
  return inner === null || !refused.check(inner, 'ipv4');
}

export class WebhookTargetError extends Error {
  override name = 'WebhookTargetError';
}

/** The URL's host as an IP address when it is one (brackets removed), else null. */
export function literalAddress(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) ? host : null;
}

/**
 * What is wrong with an endpoint URL before anything is resolved, or null:
 * a scheme other than http(s), credentials in the URL, or (unless private
 * targets are allowed) a literal address that is not public. The WHATWG URL
 * parser has already turned `0x7f.1` or `2130706433` into `127.0.0.1`.
 */
export function urlProblem(raw: string, allowPrivate: boolean): string | null {
  if (!URL.canParse(raw)) return 'is not a URL';
  const url = new URL(raw);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http:// or https:// URL';
  // A password here would be listed back by GET /webhooks; the signature authenticates deliveries.
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password: receivers authenticate deliveries by their signature';
  const literal = literalAddress(url);
  if (!allowPrivate && literal !== null && !isPublicAddress(literal)) {
    return `points at ${literal}, a loopback, private, link-local or otherwise non-public address (set KEYWARD_WEBHOOK_ALLOW_PRIVATE=true to allow it)`;
  }
  return null;
}

/**
 * A `lookup` for http.request that resolves as usual, then refuses the
 * connection when any resolved address is not public: a name with one
 * public and one private answer is refused rather than raced.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const bad = allowPrivate ? undefined : addresses.find((entry) => !isPublicAddress(entry.address));
      if (bad) return callback(new WebhookTargetError(`refused: ${hostname} resolves to ${bad.address}, which is not a public address`), []);
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, first.address, first.family);
    });
  };
}
