import { AlertDialog, Dialog } from 'radix-ui';
import type { ReactNode } from 'react';

export function ErrorAlert({ error }: { error: Error | string | null | undefined }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {typeof error === 'string' ? error : error.message}
    </p>
  );
}

/**
 * A dialog's failure message, then Cancel and the main action. In an alert
 * dialog Cancel is AlertDialog.Cancel, which Radix focuses first, so Enter on
 * a destructive confirmation does nothing harmful.
 */
export function DialogFooter({ error, kind = 'dialog', children }: { error?: Error | string | null; kind?: 'dialog' | 'alert'; children: ReactNode }) {
  const Close = kind === 'alert' ? AlertDialog.Cancel : Dialog.Close;
  return (
    <>
      <ErrorAlert error={error} />
      <div className="actions">
        <Close asChild>
          <button type="button" className="button">
            Cancel
          </button>
        </Close>
        {children}
      </div>
    </>
  );
}
