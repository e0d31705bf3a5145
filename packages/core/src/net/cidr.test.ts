import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isCidrWithin, isIpAllowed, isValidCidr, normalizeCidr, parseCidr } from './cidr.ts';

describe('parseCidr', () => {
  it('parses IPv4 and IPv6 ranges', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefixLength: 8, family: 4 });
    expect(parseCidr('2001:db8::/32')).toEqual({ address: '2001:db8::', prefixLength: 32, family: 6 });
  });

  it('reads a bare address as a single-host range', () => {
    expect(parseCidr('192.0.2.7')).toEqual({ address: '192.0.2.7', prefixLength: 32, family: 4 });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefixLength: 128, family: 6 });
  });

  it('clears host bits and canonicalises IPv6', () => {
    expect(parseCidr('10.1.2.3/8')?.address).toBe('10.0.0.0');
    expect(parseCidr('2001:DB8:0:0:0:0:0:1/64')?.address).toBe('2001:db8::');
    expect(parseCidr('2001:db8::ff/121')?.address).toBe('2001:db8::80');
  });

  it.each(['', 'localhost', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/8/8', '10.0.0.256', ' 10.0.0.1', 'fe80::1%eth0', '10.0.0.0/-1'])(
    'rejects %j',
    (value) => {
      expect(parseCidr(value)).toBeNull();
      expect(isValidCidr(value)).toBe(false);
    },
  );
});

describe('normalizeCidr', () => {
  it('writes the canonical address/length form', () => {
    expect(normalizeCidr('10.0.0.1')).toBe('10.0.0.1/32');
    expect(normalizeCidr('172.16.5.4/12')).toBe('172.16.0.0/12');
    expect(normalizeCidr('2001:0DB8::1')).toBe('2001:db8::1/128');
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 128 }), (ip, bits) => {
        const length = ip.includes(':') ? bits : bits % 33;
        const once = normalizeCidr(`${ip}/${length}`);
        expect(normalizeCidr(once)).toBe(once);
      }),
      { numRuns: 200 },
    );
  });

  it('throws on input that is not an address or range', () => {
    expect(() => normalizeCidr('nope')).toThrow(TypeError);
  });
});

describe('isIpAllowed', () => {
  it('matches IPv4 addresses inside and outside a range', () => {
    expect(isIpAllowed('10.20.30.40', ['10.0.0.0/8'])).toBe(true);
    expect(isIpAllowed('11.0.0.1', ['10.0.0.0/8'])).toBe(false);
    expect(isIpAllowed('192.0.2.7', ['198.51.100.0/24', '192.0.2.7'])).toBe(true);
  });

  it('matches IPv6 addresses inside and outside a range', () => {
    expect(isIpAllowed('2001:db8:1::5', ['2001:db8::/32'])).toBe(true);
    expect(isIpAllowed('2001:db9::5', ['2001:db8::/32'])).toBe(false);
  });

  it('matches IPv4-mapped IPv6 addresses against IPv4 ranges', () => {
    expect(isIpAllowed('::ffff:10.0.0.1', ['10.0.0.0/8'])).toBe(true);
    expect(isIpAllowed('::ffff:11.0.0.1', ['10.0.0.0/8'])).toBe(false);
  });

  it('agrees with a bit-level check for random IPv4 ranges', () => {
    const toInt = (ip: string) => ip.split('.').reduce((value, part) => value * 256 + Number(part), 0);
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, network, length) => {
        const size = 2 ** (32 - length);
        const inside = Math.floor(toInt(ip) / size) === Math.floor(toInt(network) / size);
        expect(isIpAllowed(ip, [`${network}/${length}`])).toBe(inside);
      }),
      { numRuns: 300 },
    );
  });

  it('allows nothing for an empty list, an invalid address or only invalid ranges', () => {
    expect(isIpAllowed('10.0.0.1', [])).toBe(false);
    expect(isIpAllowed('not-an-ip', ['0.0.0.0/0'])).toBe(false);
    expect(isIpAllowed('10.0.0.1', ['garbage', '10.0.0.0/99'])).toBe(false);
  });
});

describe('isCidrWithin', () => {
  it('holds for a range or address inside a wider range, and for a range itself', () => {
    expect(isCidrWithin('10.1.2.3/32', '10.0.0.0/8')).toBe(true);
    expect(isCidrWithin('10.1.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(isCidrWithin('127.0.0.1', '127.0.0.1/32')).toBe(true);
    expect(isCidrWithin('2001:db8:1::/48', '2001:db8::/32')).toBe(true);
  });

  it('fails for a wider range, another network, another family or garbage', () => {
    expect(isCidrWithin('10.0.0.0/8', '10.1.0.0/16')).toBe(false);
    expect(isCidrWithin('0.0.0.0/0', '127.0.0.1/32')).toBe(false);
    expect(isCidrWithin('11.0.0.1/32', '10.0.0.0/8')).toBe(false);
    expect(isCidrWithin('::ffff:10.0.0.1/128', '10.0.0.0/8')).toBe(false);
    expect(isCidrWithin('garbage', '0.0.0.0/0')).toBe(false);
  });

  it('agrees with isIpAllowed for random IPv4 addresses', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, network, length) => {
        expect(isCidrWithin(`${ip}/32`, `${network}/${length}`)).toBe(isIpAllowed(ip, [`${network}/${length}`]));
      }),
      { numRuns: 300 },
    );
  });
});
