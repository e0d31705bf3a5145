import { describe, expect, it } from 'vitest';
import { TurnBatch } from './turn-batch.ts';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const never = () => {
  throw new Error('no job should fail here');
};

describe('TurnBatch', () => {
  it('runs the jobs queued in one turn together, in order, at the end of the turn and not before', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    batch.add(() => ran.push('first'), never);
    batch.add(() => ran.push('second'), never);
    batch.add(() => ran.push('third'), never);
    expect(ran).toEqual([]);
    expect(batch.pending).toBe(3);
    await nextTurn();
    expect(ran).toEqual(['first', 'second', 'third']);
    expect(batch.pending).toBe(0);
  });

  it('runs them after the I/O callbacks of the turn that queued them', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    // A timer's callback, like a socket's, runs before the turn's check phase.
    await new Promise<void>((resolve) => {
      setTimeout(() => {
        batch.add(() => ran.push('queued job'), never);
        queueMicrotask(() => ran.push('microtask of the callback'));
        setImmediate(() => {
          ran.push('later immediate');
          resolve();
        });
      }, 0);
    });
    expect(ran).toEqual(['microtask of the callback', 'queued job', 'later immediate']);
  });

  it('gives a job that throws to its own failure handler and runs the rest', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    const failures: unknown[] = [];
    const broken = new Error('broken job');
    batch.add(() => ran.push('before'), never);
    batch.add(() => {
      throw broken;
    }, (error) => failures.push(error));
    batch.add(() => ran.push('after'), never);
    await nextTurn();
    expect(ran).toEqual(['before', 'after']);
    expect(failures).toEqual([broken]);
  });

  it('leaves a job queued while the batch runs for the next turn, so a busy turn cannot grow without end', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    batch.add(() => {
      ran.push('first turn');
      batch.add(() => ran.push('second turn'), never);
      expect(batch.pending).toBe(1);
    }, never);
    await nextTurn();
    expect(ran).toEqual(['first turn']);
    await nextTurn();
    expect(ran).toEqual(['first turn', 'second turn']);
  });
});
