// What a system call costs on this machine, and what it costs the work that
// follows it (docs/performance.md, "Where each microsecond goes"). Each piece of
// work runs 40,000 times alone, then 40,000 times right after a 16-byte
// write to /dev/null; the second figure is the time per iteration minus the
// write's own. The cached verification is Verifier.verify on a cache hit
// (10,000 tokens in a temporary SQLite data dir, removed at the end). Touching
// 64 scattered memory pages is there to tell a TLB refill from colder caches
// and branch predictors.
//
//   npm exec -- node scripts/profile-syscall-penalty.ts
import { closeSync, openSync, writeSync } from 'node:fs';
import { hash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { newKeyringEntry, parseKeyring } from '@keyward/core';
import type { VerifyContext } from '../packages/server/src/verification/verifier.ts';
import { insertTokens, openInstance } from './bench-verification.ts';

const ITERATIONS = 40_000;
const ROUNDS = 3;
const nullDevice = openSync('/dev/null', 'w');
const byte = Buffer.alloc(16);
const syscall = () => writeSync(nullDevice, byte);
const nowNs = () => process.hrtime.bigint();

const keyring = parseKeyring(newKeyringEntry('v1'));
const instance = await openInstance(keyring, 'syscall');
try {
  const tokens: string[] = [];
  await insertTokens(instance, keyring, 10_000, (_index, plaintext) => tokens.push(plaintext));
  const { verifier } = instance.context;
  const question = { scopes: ['scans:read'], organizationId: instance.organizationId };
  const context: VerifyContext = { entryPoint: 'verify', spendQuota: true };
  for (const token of tokens) await verifier.verify(token, question, context);

  const body = JSON.stringify({ token: tokens[0], scopes: ['scans:read'] });
  const pages = new Float64Array((64 * 1024 * 1024) / 8);
  const pageStarts = Array.from({ length: 64 }, () => Math.floor(Math.random() * (pages.length / 512)) * 512);
  let sink = 0;
  const works: [string, (index: number) => unknown][] = [
    ['touch 64 scattered pages', () => pageStarts.reduce((sum, start) => sum + pages[start]!, 0)],
    ['JSON.parse of a verify body', () => JSON.parse(body)],
    ['SHA-256 of a token', (index) => hash('sha256', tokens[index % tokens.length]!, 'binary')],
    ['Verifier.verify, cache hit', (index) => verifier.verify(tokens[index % tokens.length]!, question, context)],
  ];

  async function timePerIteration(step: (index: number) => unknown): Promise<number> {
    const started = nowNs();
    for (let index = 0; index < ITERATIONS; index++) {
      const result = step(index);
      // The verification answers a promise; awaiting it is part of its cost either way.
      if (result instanceof Promise) await result;
      else if (typeof result === 'number') sink += result;
    }
    return Number(nowNs() - started) / ITERATIONS;
  }

  for (let round = 1; round <= ROUNDS; round++) {
    const syscallNs = await timePerIteration(syscall);
    const line = [`round ${round}: a write(2) to /dev/null ${Math.round(syscallNs)} ns`];
    for (const [name, work] of works) {
      const aloneNs = await timePerIteration(work);
      const afterNs = (await timePerIteration((index) => (syscall(), work(index)))) - syscallNs;
      line.push(`${name}: ${Math.round(aloneNs)} ns alone, ${Math.round(afterNs)} ns after a syscall (${(afterNs / aloneNs).toFixed(1)}×)`);
    }
    console.log(line.join('\n  '));
  }
  if (sink === Number.MIN_VALUE) console.log(sink);
} finally {
  closeSync(nullDevice);
  await instance.app.close();
  await instance.database.close();
  await rm(instance.dataDir, { recursive: true, force: true });
}
