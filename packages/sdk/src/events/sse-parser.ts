// A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed
// text chunks as they arrive: fields may be split across chunks at any byte.

export interface SseMessage {
  event: string;
  data: string;
  /** The `id:` of this message, when it had one. */
  id: string | undefined;
}

export interface SseParser {
  push(chunk: string): void;
}

export interface SseHandlers {
  onMessage(message: SseMessage): void;
  onRetry?(ms: number): void;
}

export function createSseParser(handlers: SseHandlers): SseParser {
  let buffered = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;

  function line(text: string): void {
    if (text === '') {
      if (data.length > 0 || event !== '') handlers.onMessage({ event: event || 'message', data: data.join('\n'), id });
      event = '';
      data = [];
      id = undefined;
      return;
    }
    if (text.startsWith(':')) return; // a comment, e.g. the server's heartbeat
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) handlers.onRetry?.(Number(value));
  }

  return {
    push(chunk) {
      buffered += chunk;
      let start = 0;
      for (let i = 0; i < buffered.length; i++) {
        const char = buffered[i];
        if (char !== '\n' && char !== '\r') continue;
        // A CR at the very end may be half of a CRLF: wait for the next chunk.
        if (char === '\r' && i === buffered.length - 1) break;
        line(buffered.slice(start, i));
        if (char === '\r' && buffered[i + 1] === '\n') i++;
        start = i + 1;
      }
      buffered = buffered.slice(start);
    },
  };
}
