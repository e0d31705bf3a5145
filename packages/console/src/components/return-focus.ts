import { useRef } from 'react';

/**
 * Gives focus back to the control that opened a dialog. Radix does this only
 * for its own Dialog.Trigger; our dialogs also open from menus and from other
 * dialogs, so keyboard users would otherwise land on <body>.
 */
export function useReturnFocus() {
  const target = useRef<HTMLElement | null>(null);
  return {
    remember(element?: HTMLElement | null) {
      target.current = element ?? (document.activeElement instanceof HTMLElement ? document.activeElement : null);
    },
    get element() {
      return target.current;
    },
    onCloseAutoFocus(event: Event) {
      if (!target.current?.isConnected) return;
      event.preventDefault();
      target.current.focus();
    },
  };
}

export function focusIfConnected(element: HTMLElement | null | undefined, event: Event): void {
  if (!element?.isConnected) return;
  event.preventDefault();
  element.focus();
}
