import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BUILT_IN_SCOPES, DEMO_SCOPES, hashToken, newKeyringEntry } from '@keyward/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';
import { SECRETS_FILE, resolveKeyring } from './keyring-source.ts';

/** The ConfigError that `load` throws; fails the test when it throws nothing or something else. */
function configErrorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}

let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(path.join(tmpdir(), 'keyward-config-'));
});
afterEach(() => {
  rmSync(cwd, { recursive: true, force: true });
});

function writeConfigFile(name: string, content: unknown): string {
  const file = path.join(cwd, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:8080, SQLite in ./data under the working directory, and the demo catalog', () => {
    const config = loadConfig({}, cwd);
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      dataDir: path.join(cwd, 'data'),
      databaseUrl: null,
      redisUrl: null,
      secrets: null,
      adminEmail: null,
      adminPassword: null,
      publicUrl: 'http://127.0.0.1:8080',
      logLevel: 'info',
      trustedProxies: [],
      prefixes: { personal: 'kw_pat', client: 'kw_svc' },
      configFile: null,
      bodyLimitBytes: 262_144,
      rateLimits: {
        passwordFlow: { max: 5, windowSeconds: 900 },
        loginPerIp: { max: 20, windowSeconds: 900 },
        loginPerAccount: { max: 10, windowSeconds: 900 },
      },
    });
    expect(config.catalog.scopes.map((scope) => scope.name)).toEqual([...BUILT_IN_SCOPES, ...DEMO_SCOPES].map((scope) => scope.name));
    expect(config.catalog.defaultPreset).toBe('Read only');
  });

  it('treats empty settings as unset', () => {
    const config = loadConfig({ HOST: '', PORT: '', KEYWARD_DATA_DIR: '', DATABASE_URL: '', LOG_LEVEL: '', KEYWARD_ADMIN_EMAIL: '', KEYWARD_ADMIN_PASSWORD: '', KEYWARD_CONFIG: '' }, cwd);
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: path.join(cwd, 'data'), databaseUrl: null, logLevel: 'info', adminEmail: null, adminPassword: null });
  });

  it('reads every setting from the environment', () => {
    const config = loadConfig(
      {
        HOST: '0.0.0.0',
        PORT: '9090',
        KEYWARD_DATA_DIR: 'var/keyward',
        DATABASE_URL: 'postgres://keyward:pw@db:5432/keyward',
        REDIS_URL: 'redis://cache:6379',
        KEYWARD_SECRETS: 'v1:abc',
        KEYWARD_ADMIN_EMAIL: 'admin@example.com',
        KEYWARD_ADMIN_PASSWORD: ' a long password ',
        KEYWARD_PUBLIC_URL: 'https://keyward.example.com/',
        LOG_LEVEL: 'warn',
        KEYWARD_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.1',
        KEYWARD_PASSWORD_FLOW_MAX: '7',
        KEYWARD_PASSWORD_FLOW_WINDOW_SECONDS: '60',
        KEYWARD_BODY_LIMIT_BYTES: '4096',
      },
      cwd,
    );
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 9090,
      dataDir: path.join(cwd, 'var/keyward'),
      databaseUrl: 'postgres://keyward:pw@db:5432/keyward',
      redisUrl: 'redis://cache:6379',
      secrets: 'v1:abc',
      adminEmail: 'admin@example.com',
      adminPassword: ' a long password ',
      publicUrl: 'https://keyward.example.com',
      logLevel: 'warn',
      trustedProxies: ['10.0.0.0/8', '192.168.1.1'],
      bodyLimitBytes: 4096,
    });
    expect(config.rateLimits.passwordFlow).toEqual({ max: 7, windowSeconds: 60 });
  });

  it('keeps an absolute KEYWARD_DATA_DIR as it is', () => {
    expect(loadConfig({ KEYWARD_DATA_DIR: '/srv/keyward-data' }, cwd).dataDir).toBe('/srv/keyward-data');
  });

  it('brackets an IPv6 HOST in the default public URL', () => {
    expect(loadConfig({ HOST: '::1', PORT: '8081' }, cwd).publicUrl).toBe('http://[::1]:8081');
  });

  describe('refuses a bad setting with a ConfigError naming it', () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['a PORT that is not a number', { PORT: 'eighty' }, 'PORT'],
      ['a PORT above 65535', { PORT: '70000' }, 'PORT'],
      ['a negative PORT', { PORT: '-1' }, 'PORT'],
      ['a fractional PORT', { PORT: '80.5' }, 'PORT'],
      ['a DATABASE_URL that is not PostgreSQL', { DATABASE_URL: 'mysql://root:hunter2@db/keyward' }, 'DATABASE_URL'],
      ['a REDIS_URL that is not Redis', { REDIS_URL: 'cache:6379' }, 'REDIS_URL'],
      ['a HOST that is neither an address nor a name', { HOST: '999.1.1.1' }, 'HOST'],
      ['a KEYWARD_ADMIN_EMAIL that is not an email', { KEYWARD_ADMIN_EMAIL: 'not-an-email', KEYWARD_ADMIN_PASSWORD: 'a long enough password' }, 'KEYWARD_ADMIN_EMAIL'],
      ['a DATABASE_URL without KEYWARD_SECRETS, which replicas must share', { DATABASE_URL: 'postgres://keyward@db/keyward' }, 'KEYWARD_SECRETS'],
      ['an unknown LOG_LEVEL', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      ['a KEYWARD_TRUSTED_PROXIES entry that is not an address', { KEYWARD_TRUSTED_PROXIES: '10.0.0.1,proxy.internal' }, 'KEYWARD_TRUSTED_PROXIES'],
      ['a KEYWARD_TRUSTED_PROXIES range with a bad prefix length', { KEYWARD_TRUSTED_PROXIES: '10.0.0.0/33' }, 'KEYWARD_TRUSTED_PROXIES'],
      ['KEYWARD_ADMIN_EMAIL without a password', { KEYWARD_ADMIN_EMAIL: 'admin@example.com' }, 'KEYWARD_ADMIN_PASSWORD'],
      ['KEYWARD_ADMIN_PASSWORD without an email', { KEYWARD_ADMIN_PASSWORD: 'a long enough password' }, 'KEYWARD_ADMIN_EMAIL'],
      ['a short KEYWARD_ADMIN_PASSWORD', { KEYWARD_ADMIN_EMAIL: 'admin@example.com', KEYWARD_ADMIN_PASSWORD: 'hunter2' }, 'KEYWARD_ADMIN_PASSWORD'],
      ['a KEYWARD_PUBLIC_URL that is not a URL', { KEYWARD_PUBLIC_URL: 'keyward dot example' }, 'KEYWARD_PUBLIC_URL'],
      ['a zero KEYWARD_PASSWORD_FLOW_MAX', { KEYWARD_PASSWORD_FLOW_MAX: '0' }, 'KEYWARD_PASSWORD_FLOW_MAX'],
      ['a tiny KEYWARD_BODY_LIMIT_BYTES', { KEYWARD_BODY_LIMIT_BYTES: '10' }, 'KEYWARD_BODY_LIMIT_BYTES'],
    ];
    it.each(cases)('%s', (_name, env, setting) => {
      const error = configErrorOf(() => loadConfig(env, cwd));
      expect(error.setting).toBe(setting);
      expect(error.message.startsWith(`${setting}: `)).toBe(true);
      expect(error.message).not.toContain('\n');
    });

    it('without repeating a password from DATABASE_URL or KEYWARD_ADMIN_PASSWORD', () => {
      expect(configErrorOf(() => loadConfig({ DATABASE_URL: 'mysql://root:hunter2@db/keyward' }, cwd)).message).not.toContain('hunter2');
      expect(configErrorOf(() => loadConfig({ KEYWARD_ADMIN_EMAIL: 'a@example.com', KEYWARD_ADMIN_PASSWORD: 'hunter2' }, cwd)).message).not.toContain('hunter2');
    });

    it('says that both admin settings go together', () => {
      const error = configErrorOf(() => loadConfig({ KEYWARD_ADMIN_EMAIL: 'admin@example.com' }, cwd));
      expect(error.message).toContain('KEYWARD_ADMIN_EMAIL');
      expect(error.message).toContain('KEYWARD_ADMIN_PASSWORD');
    });
  });

  describe('with a config file', () => {
    const catalogFile = {
      scopes: [
        { name: 'orders:read', description: 'Read orders', minRole: 'viewer' },
        { name: 'orders:write', description: 'Change orders', minRole: 'member' },
      ],
      presets: [
        { name: 'Orders', scopes: ['orders:*'] },
        { name: 'Orders read', scopes: ['orders:read'] },
      ],
      defaultPreset: 'Orders read',
      tokenPrefixes: { personal: 'acme_pat', client: 'acme_svc' },
      rateLimits: { passwordFlow: { max: 3, windowSeconds: 600 }, loginPerAccount: { max: 4, windowSeconds: 300 } },
    };

    it("uses the file's scope catalog, presets, token prefixes and rate limits", () => {
      const file = writeConfigFile('custom.json', catalogFile);
      const config = loadConfig({ KEYWARD_CONFIG: 'custom.json' }, cwd);
      expect(config.configFile).toBe(file);
      expect(config.catalog.scopes.map((scope) => scope.name)).toEqual([...BUILT_IN_SCOPES.map((scope) => scope.name), 'orders:read', 'orders:write']);
      expect(config.catalog.scopes.map((scope) => scope.name)).not.toContain('scans:read');
      expect(config.catalog.presets.map((preset) => preset.name)).toEqual(['Orders', 'Orders read']);
      expect(config.catalog.defaultPreset).toBe('Orders read');
      expect(config.prefixes).toEqual({ personal: 'acme_pat', client: 'acme_svc' });
      expect(config.rateLimits.passwordFlow).toEqual({ max: 3, windowSeconds: 600 });
      expect(config.rateLimits.loginPerAccount).toEqual({ max: 4, windowSeconds: 300 });
      expect(config.rateLimits.loginPerIp).toEqual({ max: 20, windowSeconds: 900 });
    });

    it('reads ./keyward.config.json from the working directory when KEYWARD_CONFIG is unset', () => {
      const file = writeConfigFile('keyward.config.json', catalogFile);
      const config = loadConfig({}, cwd);
      expect(config.configFile).toBe(file);
      expect(config.prefixes.personal).toBe('acme_pat');
    });

    it('reads a YAML file, named by KEYWARD_CONFIG or found as ./keyward.config.yaml', () => {
      const yaml = [
        'scopes:',
        '  - { name: "orders:read", description: "Read orders", minRole: viewer }',
        'presets:',
        '  - name: Orders',
        '    scopes: ["orders:*"]',
        'defaultPreset: Orders',
        'tokenPrefixes: { personal: acme_pat, client: acme_svc }',
      ].join('\n');
      const file = writeConfigFile('keyward.config.yaml', yaml);
      const found = loadConfig({}, cwd);
      expect(found.configFile).toBe(file);
      expect(found.catalog.scopes.map((scope) => scope.name)).toContain('orders:read');
      expect(found.prefixes).toEqual({ personal: 'acme_pat', client: 'acme_svc' });
      writeConfigFile('other.yml', 'scopes: [ { name: "a:b" ');
      expect(configErrorOf(() => loadConfig({ KEYWARD_CONFIG: 'other.yml' }, cwd)).message).toMatch(/^KEYWARD_CONFIG: .*other\.yml is not valid YAML/);
    });

    it('lets the environment override the password-flow limit of the file', () => {
      writeConfigFile('keyward.config.json', catalogFile);
      expect(loadConfig({ KEYWARD_PASSWORD_FLOW_MAX: '9' }, cwd).rateLimits.passwordFlow).toEqual({ max: 9, windowSeconds: 600 });
    });

    it('accepts the example config shipped with the repository', () => {
      const example = path.resolve(import.meta.dirname, '../../../../keyward.config.example.json');
      const config = loadConfig({ KEYWARD_CONFIG: example }, cwd);
      expect(config.catalog.scopes.map((scope) => scope.name)).toContain('clearances:write');
      expect(config.prefixes).toEqual({ personal: 'kw_pat', client: 'kw_svc' });
    });

    const bad: Array<[string, unknown, RegExp]> = [
      ['invalid JSON', '{ "scopes": [', /not valid JSON/],
      ['an unknown field', { scopes: [], scopez: [] }, /\/scopez is not a known field/],
      ['an unknown field in a scope', { scopes: [{ name: 'a:b', description: 'x', minRole: 'viewer', color: 'red' }] }, /\/scopes\/0\/color is not a known field/],
      ['a bad scope name', { scopes: [{ name: 'Orders', description: 'x', minRole: 'viewer' }] }, /"Orders": name must look like "area:action"/],
      ['a built-in scope redefined', { scopes: [{ name: 'tokens:read', description: 'x', minRole: 'viewer' }] }, /built in/],
      ['a preset naming no catalog scope', { scopes: [{ name: 'a:b', description: 'x', minRole: 'viewer' }], presets: [{ name: 'P', scopes: ['c:d'] }], defaultPreset: 'P' }, /matches no scope/],
      ['an unknown default preset', { defaultPreset: 'Everything' }, /Default preset "Everything"/],
      ['a bad token prefix', { tokenPrefixes: { personal: 'KW-PAT' } }, /tokenPrefixes.personal "KW-PAT" is not a valid prefix/],
      ['the same prefix for both kinds', { tokenPrefixes: { personal: 'kw_tok', client: 'kw_tok' } }, /must differ/],
      ['a rate limit of zero', { rateLimits: { passwordFlow: { max: 0, windowSeconds: 60 } } }, /rateLimits\/passwordFlow\/max/],
      ['a legacy prefix with a space', { legacyTokenPrefixes: ['sk live'] }, /legacyTokenPrefixes: "sk live" is not a valid prefix/],
      ['a legacy prefix that swallows native tokens', { legacyTokenPrefixes: ['kw_'] }, /"kw_" overlaps Keyward's own token prefixes/],
      ['a repeated legacy prefix', { legacyTokenPrefixes: ['sk_', 'sk_'] }, /repeats a prefix/],
    ];
    it.each(bad)('refuses %s, naming KEYWARD_CONFIG', (_name, content, message) => {
      writeConfigFile('bad.json', content);
      const error = configErrorOf(() => loadConfig({ KEYWARD_CONFIG: 'bad.json' }, cwd));
      expect(error.setting).toBe('KEYWARD_CONFIG');
      expect(error.message).toMatch(/^KEYWARD_CONFIG: /);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
    });

    it('reads legacyTokenPrefixes from the file, and KEYWARD_LEGACY_TOKEN_PREFIXES instead when set', () => {
      writeConfigFile('legacy.json', { legacyTokenPrefixes: ['sk_live_', 'acme-'] });
      expect(loadConfig({ KEYWARD_CONFIG: 'legacy.json' }, cwd).legacyTokenPrefixes).toEqual(['sk_live_', 'acme-']);
      expect(loadConfig({ KEYWARD_CONFIG: 'legacy.json', KEYWARD_LEGACY_TOKEN_PREFIXES: ' pk_test_ , old. ' }, cwd).legacyTokenPrefixes).toEqual(['pk_test_', 'old.']);
      expect(loadConfig({}, cwd).legacyTokenPrefixes).toEqual([]);
    });

    it('refuses a bad KEYWARD_LEGACY_TOKEN_PREFIXES, naming it', () => {
      const error = configErrorOf(() => loadConfig({ KEYWARD_LEGACY_TOKEN_PREFIXES: 'sk_live_,kw_pat_x' }, cwd));
      expect(error.setting).toBe('KEYWARD_LEGACY_TOKEN_PREFIXES');
      expect(error.message).toMatch(/"kw_pat_x" overlaps/);
    });

    it('refuses a KEYWARD_CONFIG that names a missing file, naming KEYWARD_CONFIG and the path', () => {
      const error = configErrorOf(() => loadConfig({ KEYWARD_CONFIG: 'nowhere.json' }, cwd));
      expect(error.setting).toBe('KEYWARD_CONFIG');
      expect(error.message).toContain(path.join(cwd, 'nowhere.json'));
    });
  });
});

describe('resolveKeyring', () => {
  it('generates a 0600 secrets file in the data dir once, and reuses it on the next start', () => {
    const config = loadConfig({ KEYWARD_DATA_DIR: 'data' }, cwd);
    const file = path.join(cwd, 'data', SECRETS_FILE);
    const generated = vi.fn();
    const first = resolveKeyring(config, generated);
    expect(generated).toHaveBeenCalledExactlyOnceWith(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^v1:[A-Za-z0-9_-]{43}\n$/);
    expect(first.current.version).toBe('v1');

    const again = vi.fn();
    const second = resolveKeyring(config, again);
    expect(again).not.toHaveBeenCalled();
    expect(hashToken(second, 'kw_pat_example')).toEqual(hashToken(first, 'kw_pat_example'));
  });

  it('tightens a secrets file that others can read back to 0600', () => {
    const config = loadConfig({ KEYWARD_DATA_DIR: 'data' }, cwd);
    resolveKeyring(config);
    const file = path.join(cwd, 'data', SECRETS_FILE);
    chmodSync(file, 0o644);
    resolveKeyring(config);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('uses KEYWARD_SECRETS when set, and writes no file', () => {
    const spec = `${newKeyringEntry('v2')},${newKeyringEntry('v1')}`;
    const generated = vi.fn();
    const keyring = resolveKeyring(loadConfig({ KEYWARD_DATA_DIR: 'data', KEYWARD_SECRETS: spec }, cwd), generated);
    expect(keyring.current.version).toBe('v2');
    expect(keyring.all.map((secret) => secret.version)).toEqual(['v2', 'v1']);
    expect(generated).not.toHaveBeenCalled();
    expect(existsSync(path.join(cwd, 'data', SECRETS_FILE))).toBe(false);
  });

  it('prefers KEYWARD_SECRETS over a secrets file already in the data dir', () => {
    const fromFile = resolveKeyring(loadConfig({ KEYWARD_DATA_DIR: 'data' }, cwd));
    const fromEnv = resolveKeyring(loadConfig({ KEYWARD_DATA_DIR: 'data', KEYWARD_SECRETS: newKeyringEntry('v7') }, cwd));
    expect(fromEnv.current.version).toBe('v7');
    expect(hashToken(fromEnv, 'kw_pat_example')).not.toEqual(hashToken(fromFile, 'kw_pat_example'));
  });

  const badSecrets: Array<[string, string, string]> = [
    ['a key that is too short', 'v1:c2VjcmV0LW1hdGVyaWFs', 'c2VjcmV0LW1hdGVyaWFs'],
    ['a key that is not base64url', 'v1:secret+material/that=is*not', 'secret+material'],
    ['an entry without a version', 'secretmaterialwithoutaversionlabel', 'secretmaterialwithoutaversionlabel'],
    ['an invalid version label', 'version one:c2VjcmV0LW1hdGVyaWFsLWMyVmpjbVYwTFcxaGRHVnlhV0Zz', 'c2VjcmV0LW1hdGVyaWFs'],
  ];
  it.each(badSecrets)('refuses KEYWARD_SECRETS with %s, naming the setting without echoing the secret', (_name, spec, secret) => {
    const error = configErrorOf(() => resolveKeyring(loadConfig({ KEYWARD_DATA_DIR: 'data', KEYWARD_SECRETS: spec }, cwd)));
    expect(error.setting).toBe('KEYWARD_SECRETS');
    expect(error.message).toMatch(/^KEYWARD_SECRETS: Keyring entry 1/);
    expect(error.message).not.toContain(secret);
  });

  it('refuses a damaged secrets file, naming the file', () => {
    const config = loadConfig({ KEYWARD_DATA_DIR: 'data' }, cwd);
    resolveKeyring(config);
    const file = path.join(cwd, 'data', SECRETS_FILE);
    writeFileSync(file, 'v1:tooshort\n');
    const error = configErrorOf(() => resolveKeyring(config));
    expect(error.setting).toBe(file);
    expect(error.message).not.toContain('tooshort');
  });
});

describe('heap compaction', () => {
  it('is on unless KEYWARD_HEAP_COMPACTION says false', () => {
    expect(loadConfig({}, cwd).heapCompaction).toBe(true);
    expect(loadConfig({ KEYWARD_HEAP_COMPACTION: 'true' }, cwd).heapCompaction).toBe(true);
    expect(loadConfig({ KEYWARD_HEAP_COMPACTION: 'false' }, cwd).heapCompaction).toBe(false);
  });

  it('refuses anything but true or false, naming the setting', () => {
    expect(configErrorOf(() => loadConfig({ KEYWARD_HEAP_COMPACTION: 'sometimes' }, cwd)).setting).toBe('KEYWARD_HEAP_COMPACTION');
  });
});

describe('issue 8 settings', () => {
  it('defaults LOG_FORMAT to automatic, KEYWARD_REDIS_PREFIX to keyward: and KEYWARD_ALLOW_STRANDED_TOKENS to false', () => {
    expect(loadConfig({}, cwd)).toMatchObject({ logFormat: null, redisPrefix: 'keyward:', allowStrandedTokens: false });
  });

  it('reads LOG_FORMAT, KEYWARD_REDIS_PREFIX and KEYWARD_ALLOW_STRANDED_TOKENS', () => {
    const config = loadConfig({ LOG_FORMAT: 'pretty', KEYWARD_REDIS_PREFIX: 'keyward-staging:', KEYWARD_ALLOW_STRANDED_TOKENS: 'true' }, cwd);
    expect(config).toMatchObject({ logFormat: 'pretty', redisPrefix: 'keyward-staging:', allowStrandedTokens: true });
  });

  it.each([
    ['LOG_FORMAT', 'yaml'],
    ['KEYWARD_REDIS_PREFIX', 'has spaces:'],
    ['KEYWARD_ALLOW_STRANDED_TOKENS', 'yes please'],
  ])('refuses a bad %s, naming it', (setting, value) => {
    expect(configErrorOf(() => loadConfig({ [setting]: value }, cwd)).setting).toBe(setting);
  });

  it('names KEYWARD_DATA_DIR in one line when the generated secret cannot be kept there', () => {
    writeFileSync(path.join(cwd, 'a-file'), 'x');
    const error = configErrorOf(() => resolveKeyring(loadConfig({ KEYWARD_DATA_DIR: 'a-file/data' }, cwd)));
    expect(error.setting).toBe('KEYWARD_DATA_DIR');
    expect(error.message).toMatch(/^KEYWARD_DATA_DIR: cannot keep the generated secret in .*a-file\/data \(.*\); make it a writable directory, or set KEYWARD_SECRETS$/);
  });
});

describe('secret-scanning partners', () => {
  const SECRET = 'partner-secret-0123456789abcdefghijklmnopqrstuv';
  const PREVIOUS = 'previous-secret-0123456789abcdefghijklmnopqrstu';

  it('has none by default, a five-minute tolerance and per-partner and per-address limits', () => {
    expect(loadConfig({}, cwd).secretScanning).toEqual({
      partners: [],
      toleranceSeconds: 300,
      rateLimits: { perPartner: { max: 600, windowSeconds: 60 }, perIp: { max: 120, windowSeconds: 60 } },
    });
  });

  it('reads partners from the config file and from KEYWARD_SECRET_SCANNING_PARTNERS, two secrets while one is replaced', () => {
    writeConfigFile('keyward.config.json', { secretScanning: { partners: [{ name: 'github', secrets: [SECRET, PREVIOUS] }], toleranceSeconds: 120, rateLimits: { perIp: { max: 5, windowSeconds: 10 } } } });
    const config = loadConfig({ KEYWARD_SECRET_SCANNING_PARTNERS: ` gitlab:${SECRET} , ci-scanner:${SECRET}:${PREVIOUS}` }, cwd);
    expect(config.secretScanning.partners).toEqual([
      { name: 'github', secrets: [SECRET, PREVIOUS] },
      { name: 'gitlab', secrets: [SECRET] },
      { name: 'ci-scanner', secrets: [SECRET, PREVIOUS] },
    ]);
    expect(config.secretScanning.toleranceSeconds).toBe(120);
    expect(config.secretScanning.rateLimits).toEqual({ perPartner: { max: 600, windowSeconds: 60 }, perIp: { max: 5, windowSeconds: 10 } });
  });

  it.each([
    ['a short secret', 'github:too-short', 'secret 1 must be 32-512 characters'],
    ['a secret with a space', `github:${SECRET.slice(0, 20)} ${SECRET.slice(20)}`, 'secret 1 must be'],
    ['three secrets', `github:${SECRET}:${PREVIOUS}:${SECRET}x`, 'needs one secret, or two'],
    ['no secret', 'github', 'needs a secret after its name'],
    ['the same secret twice', `github:${SECRET}:${SECRET}`, 'the same secret twice'],
    ['an upper-case name', `GitHub:${SECRET}`, 'each partner needs a name'],
    ['a secret without a name', SECRET, 'needs a secret after its name'],
    ['a mixed-case secret without a name', 'Partner-Secret-0123456789abcdefghijklmnopqrstuv', 'each partner needs a name'],
    ['a partner twice', `github:${SECRET},github:${PREVIOUS}`, 'configured twice'],
  ])('refuses %s, naming the setting and the partner but never the secret', (_label, value, message) => {
    const error = configErrorOf(() => loadConfig({ KEYWARD_SECRET_SCANNING_PARTNERS: value }, cwd));
    expect(error.setting).toBe('KEYWARD_SECRET_SCANNING_PARTNERS');
    expect(error.message).toContain(message);
    expect(error.message).not.toContain(SECRET.slice(0, 20));
    expect(error.message).not.toContain('too-short');
  });

  it('refuses a partner named in both the file and the environment', () => {
    writeConfigFile('keyward.config.json', { secretScanning: { partners: [{ name: 'github', secrets: [SECRET] }] } });
    expect(configErrorOf(() => loadConfig({ KEYWARD_SECRET_SCANNING_PARTNERS: `github:${PREVIOUS}` }, cwd)).message).toContain('"github" is configured twice');
  });

  it('refuses a bad partner in the config file, naming the file setting', () => {
    writeConfigFile('keyward.config.json', { secretScanning: { partners: [{ name: 'github', secrets: ['short'] }] } });
    const error = configErrorOf(() => loadConfig({}, cwd));
    expect(error.setting).toBe('KEYWARD_CONFIG secretScanning.partners');
    expect(error.message).not.toContain('short');
  });
});
