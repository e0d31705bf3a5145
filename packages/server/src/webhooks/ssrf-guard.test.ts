import { describe, expect, it } from 'vitest';
import { isPublicAddress, urlProblem } from './ssrf-guard.ts';

describe('isPublicAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::127.0.0.1', 'IPv4-compatible loopback'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of link-local'],
    ['2002:c0a8:0101::1', '6to4 of a private address'],
    ['fe80::1%eth0', 'a zone id'],
    ['not-an-ip', 'not an address'],
  ])('refuses %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '64:ff9b::808:808'])('accepts the public address %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });
});

describe('urlProblem', () => {
  it.each([
    'http://127.0.0.1/hooks',
    'http://0x7f.1/hooks',
    'http://2130706433/hooks',
    'http://[::1]:8080/hooks',
    'http://[::ffff:127.0.0.1]/hooks',
    'https://169.254.169.254/latest/meta-data',
    'http://10.0.0.5/hooks',
    'http://[fd00::5]/hooks',
  ])('refuses the literal non-public address in %s', (url) => {
    expect(urlProblem(url, false)).toMatch(/non-public address/);
  });

  it('allows literal private addresses when KEYWARD_WEBHOOK_ALLOW_PRIVATE is set', () => {
    expect(urlProblem('http://127.0.0.1:9000/hooks', true)).toBeNull();
  });

  it.each([
    ['ftp://example.com/hooks', /http:\/\/ or https:\/\//],
    ['file:///etc/passwd', /http:\/\/ or https:\/\//],
    ['gopher://example.com/', /http:\/\/ or https:\/\//],
    ['https://user:pass@example.com/hooks', /user name or password/],
    ['not a url', /is not a URL/],
  ])('refuses %s', (url, message) => {
    expect(urlProblem(url, true)).toMatch(message);
  });

  it('leaves host names to the check after DNS resolution', () => {
    expect(urlProblem('https://hooks.example.com/keyward', false)).toBeNull();
    expect(urlProblem('http://localhost:8080/', false)).toBeNull();
  });
});
