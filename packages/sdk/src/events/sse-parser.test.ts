import { describe, expect, it } from 'vitest';
import { createSseParser, type SseMessage } from './sse-parser.ts';

function parse(chunks: string[]): { messages: SseMessage[]; retries: number[] } {
  const messages: SseMessage[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ onMessage: (message) => messages.push(message), onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.push(chunk);
  return { messages, retries };
}

describe('createSseParser', () => {
  it('reads the server stream: retry, named events with ids, heartbeats ignored', () => {
    const { messages, retries } = parse(['retry: 2000\n\n', ': heartbeat\n\n', 'id: b-1\nevent: ready\ndata: {}\n\n', 'id: b-2\nevent: invalidate\ndata: {"type":"tokens.changed"}\n\n']);
    expect(retries).toEqual([2000]);
    expect(messages).toEqual([
      { event: 'ready', data: '{}', id: 'b-1' },
      { event: 'invalidate', data: '{"type":"tokens.changed"}', id: 'b-2' },
    ]);
  });

  it('joins fields split across chunks at any point, and CRLF line ends', () => {
    const text = 'id: b-7\r\nevent: reset\r\ndata: {"reason":"gap"}\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      expect(parse([text.slice(0, cut), text.slice(cut)]).messages).toEqual([{ event: 'reset', data: '{"reason":"gap"}', id: 'b-7' }]);
    }
  });

  it('joins multi-line data and names unnamed events "message"', () => {
    expect(parse(['data: a\ndata: b\n\n']).messages).toEqual([{ event: 'message', data: 'a\nb', id: undefined }]);
  });
});
