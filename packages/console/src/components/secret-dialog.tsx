// The show-once dialog. The secret is only in the parent's state while this is
// open; closing it drops the last reference (nothing is cached or stored).
import { Dialog } from 'radix-ui';
import { useRef, useState } from 'react';
import { focusIfConnected } from './return-focus.ts';

export interface ShownSecret {
  title: string;
  name: string;
  secret: string;
  /** What the secret is, for the warning: a token by default. */
  kind?: 'token' | 'invitation link';
  /** Where focus goes once the dialog closes. */
  returnTo: HTMLElement | null;
}

export function SecretDialog({ shown, onClose }: { shown: ShownSecret | null; onClose: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  // Kept past `shown` becoming null, for the close animation frame that moves focus.
  const returnTo = useRef<HTMLElement | null>(null);
  if (shown) returnTo.current = shown.returnTo;
  const close = () => {
    setCopied(null);
    onClose();
  };
  return (
    <Dialog.Root open={shown !== null} onOpenChange={(open) => !open && close()}>
      <Dialog.Portal>
        <Dialog.Overlay className="overlay" />
        <Dialog.Content className="dialog" onPointerDownOutside={(event) => event.preventDefault()} onCloseAutoFocus={(event) => focusIfConnected(returnTo.current, event)}>
          <Dialog.Title>{shown?.title}</Dialog.Title>
          <Dialog.Description className="warning" role="note">
            {shown?.kind === 'invitation link'
              ? 'Copy this link now and send it to the person over a channel you trust. It will not be shown again, and it works once, for 7 days.'
              : 'Copy this token now and keep it somewhere safe, such as a secret manager. It will not be shown again: Keyward stores only a hash of it.'}
          </Dialog.Description>
          <p className="muted">{shown?.kind === 'invitation link' ? `Invitation for ${shown.name}` : `Token “${shown?.name}”`}</p>
          <div className="secret-row">
            <code className="secret" data-testid="secret" aria-label={shown?.kind === 'invitation link' ? 'The invitation link' : 'The new token'}>
              {shown?.secret}
            </code>
            <button
              type="button"
              className="button"
              onClick={async () => {
                try {
                  await navigator.clipboard.writeText(shown?.secret ?? '');
                  setCopied('yes');
                } catch {
                  setCopied('failed');
                }
              }}
            >
              Copy
            </button>
          </div>
          <p role="status" className="muted">
            {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'Copying is not allowed here: select the token and copy it.' : ''}
          </p>
          <div className="actions">
            <Dialog.Close asChild>
              <button type="button" className="button primary">
                I have copied it
              </button>
            </Dialog.Close>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}
