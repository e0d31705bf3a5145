// A row's actions: rotate (with a grace period; the new secret is shown once),
// disable/enable, and revoke behind a confirmation.
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { AlertDialog, Dialog, DropdownMenu } from 'radix-ui';
import { useRef, useState } from 'react';
import { DialogFooter, ErrorAlert } from './dialog-footer.tsx';
import { focusIfConnected } from './return-focus.ts';
import { api, unwrap, type Token } from '../api/client.ts';

const GRACE_CHOICES: Array<[number, string]> = [
  [0, 'None: the old secret stops working now'],
  [3_600, '1 hour'],
  [86_400, '24 hours'],
];

interface Props {
  token: Token;
  onIssued(issued: { name: string; secret: string; returnTo: HTMLElement | null }): void;
}

export function TokenActions({ token, onIssued }: Props) {
  const queryClient = useQueryClient();
  const [dialog, setDialog] = useState<'rotate' | 'revoke' | null>(null);
  const [grace, setGrace] = useState(0);
  const trigger = useRef<HTMLButtonElement>(null);
  const backToTrigger = (event: Event) => focusIfConnected(trigger.current, event);
  const refresh = () => Promise.all(['tokens', 'client-tokens'].map((key) => queryClient.invalidateQueries({ queryKey: [key] })));

  const setEnabled = useMutation({
    mutationFn: async (enabled: boolean) => unwrap(await api.PATCH('/api/v1/tokens/{id}', { params: { path: { id: token.id } }, body: { enabled } })),
    onSettled: refresh,
  });
  const rotate = useMutation({
    mutationFn: async () => {
      const { token: secret, ...rotated } = unwrap(await api.POST('/api/v1/tokens/{id}/rotate', { params: { path: { id: token.id } }, body: { gracePeriodSeconds: grace } }));
      onIssued({ name: rotated.name, secret, returnTo: trigger.current });
      return rotated;
    },
    onSuccess: () => setDialog(null),
    onSettled: refresh,
  });
  const revoke = useMutation({
    mutationFn: async () => unwrap(await api.DELETE('/api/v1/tokens/{id}', { params: { path: { id: token.id } } })),
    onSuccess: () => setDialog(null),
    onSettled: refresh,
  });

  const isLive = token.status === 'active' || token.status === 'disabled';
  if (!isLive) return null;
  const failure = setEnabled.error ?? null;

  return (
    <>
      <DropdownMenu.Root>
        <DropdownMenu.Trigger ref={trigger} className="button small" aria-label={`Actions for ${token.name}`}>
          Actions <span aria-hidden="true">▾</span>
        </DropdownMenu.Trigger>
        <DropdownMenu.Portal>
          <DropdownMenu.Content className="menu" align="end" sideOffset={4}>
            {token.status === 'active' && (
              <DropdownMenu.Item className="menu-item" onSelect={() => setDialog('rotate')}>
                Rotate…
              </DropdownMenu.Item>
            )}
            {token.status === 'active' ? (
              <DropdownMenu.Item className="menu-item" onSelect={() => setEnabled.mutate(false)}>
                Disable
              </DropdownMenu.Item>
            ) : (
              <DropdownMenu.Item className="menu-item" onSelect={() => setEnabled.mutate(true)}>
                Enable
              </DropdownMenu.Item>
            )}
            <DropdownMenu.Separator className="menu-separator" />
            <DropdownMenu.Item className="menu-item danger" onSelect={() => setDialog('revoke')}>
              Revoke…
            </DropdownMenu.Item>
          </DropdownMenu.Content>
        </DropdownMenu.Portal>
      </DropdownMenu.Root>
      <ErrorAlert error={failure} />

      <Dialog.Root open={dialog === 'rotate'} onOpenChange={(open) => setDialog(open ? 'rotate' : null)}>
        <Dialog.Portal>
          <Dialog.Overlay className="overlay" />
          <Dialog.Content className="dialog" onCloseAutoFocus={backToTrigger}>
            <Dialog.Title>Rotate “{token.name}”</Dialog.Title>
            <Dialog.Description>A new secret replaces this one, with the same scopes, resources and limits. Choose how long the old secret keeps working.</Dialog.Description>
            <fieldset className="field">
              <legend>Grace period</legend>
              {GRACE_CHOICES.map(([seconds, label]) => (
                <label key={seconds} className="choice">
                  <input type="radio" name="grace" checked={grace === seconds} onChange={() => setGrace(seconds)} />
                  {label}
                </label>
              ))}
            </fieldset>
            <DialogFooter error={rotate.error}>
              <button type="button" className="button primary" disabled={rotate.isPending} onClick={() => rotate.mutate()}>
                Rotate token
              </button>
            </DialogFooter>
          </Dialog.Content>
        </Dialog.Portal>
      </Dialog.Root>

      <AlertDialog.Root open={dialog === 'revoke'} onOpenChange={(open) => setDialog(open ? 'revoke' : null)}>
        <AlertDialog.Portal>
          <AlertDialog.Overlay className="overlay" />
          <AlertDialog.Content className="dialog" onCloseAutoFocus={backToTrigger}>
            <AlertDialog.Title>Revoke “{token.name}”?</AlertDialog.Title>
            <AlertDialog.Description>Anything using this token stops working at once. A revoked token cannot be brought back.</AlertDialog.Description>
            <DialogFooter error={revoke.error} kind="alert">
              <button type="button" className="button danger" disabled={revoke.isPending} onClick={() => revoke.mutate()}>
                Revoke token
              </button>
            </DialogFooter>
          </AlertDialog.Content>
        </AlertDialog.Portal>
      </AlertDialog.Root>
    </>
  );
}
