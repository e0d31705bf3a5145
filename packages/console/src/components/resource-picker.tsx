// A ranked resource picker: type to filter, ArrowUp/ArrowDown to pick, Enter
// to add; the chosen list keeps its order (the first grant that applies wins)
// and each entry moves up or down with its buttons or Alt+ArrowUp/ArrowDown,
// focus staying on the entry that moved.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import type { ResourceRef } from '../api/client.ts';

interface Props {
  resources: ResourceRef[];
  value: ResourceRef[];
  onChange(value: ResourceRef[]): void;
  error?: string;
}

function move<T>(list: T[], from: number, to: number): T[] {
  if (to < 0 || to >= list.length) return list;
  const next = [...list];
  const [item] = next.splice(from, 1);
  next.splice(to, 0, item as T);
  return next;
}

export function ResourcePicker({ resources, value, onChange, error }: Props) {
  const id = useId();
  const [filter, setFilter] = useState('');
  const [active, setActive] = useState(0);
  const [open, setOpen] = useState(false);
  // After a move, focus follows the moved entry (its button in the same direction, or the other one at an end).
  const [moved, setMoved] = useState<{ id: string; direction: 'up' | 'down' } | null>(null);
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    if (!moved) return;
    const item = list.current?.querySelector(`[data-resource-id="${CSS.escape(moved.id)}"]`);
    const button = item?.querySelector<HTMLButtonElement>(`button[data-move="${moved.direction}"]:not(:disabled)`) ?? item?.querySelector<HTMLButtonElement>('button[data-move]:not(:disabled)');
    button?.focus();
    setMoved(null);
  }, [moved, value]);
  const chosen = new Set(value.map((r) => r.id));
  const needle = filter.trim().toLowerCase();
  const options = resources.filter((r) => !chosen.has(r.id) && (needle === '' || `${r.type} ${r.name}`.toLowerCase().includes(needle)));
  const current = Math.min(active, Math.max(options.length - 1, 0));

  const add = (resource: ResourceRef | undefined) => {
    if (!resource) return;
    onChange([...value, resource]);
    setFilter('');
    setActive(0);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      setOpen(true);
      setActive(Math.min(current + 1, options.length - 1));
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      setActive(Math.max(current - 1, 0));
    } else if (event.key === 'Enter' && open && options.length > 0) {
      event.preventDefault();
      add(options[current]);
    } else if (event.key === 'Escape' && open) {
      // Closes the list, not the dialog around it.
      event.stopPropagation();
      setOpen(false);
    }
  };

  const moveItem = (index: number, direction: 'up' | 'down') => {
    const resource = value[index];
    if (!resource) return;
    onChange(move(value, index, index + (direction === 'up' ? -1 : 1)));
    setMoved({ id: resource.id, direction });
  };

  const onItemKeyDown = (index: number) => (event: KeyboardEvent<HTMLLIElement>) => {
    if (!event.altKey || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) return;
    event.preventDefault();
    moveItem(index, event.key === 'ArrowUp' ? 'up' : 'down');
  };

  return (
    <fieldset className="field" aria-describedby={`${id}-help${error ? ` ${id}-error` : ''}`}>
      <legend>Resources</legend>
      <p id={`${id}-help`} className="muted">
        Leave empty for every resource you can access. Otherwise the token reaches only these, in this order of priority: move one with its ↑ ↓ buttons, or Alt+↑ / Alt+↓.
      </p>
      <div className="combobox">
        <input
          type="text"
          role="combobox"
          aria-label="Add a resource"
          aria-expanded={open && options.length > 0}
          aria-controls={`${id}-options`}
          aria-autocomplete="list"
          aria-activedescendant={open && options.length > 0 ? `${id}-option-${current}` : undefined}
          placeholder={resources.length === 0 ? 'No resources in this organization yet' : 'Type to find a resource, then Enter'}
          disabled={resources.length === 0}
          value={filter}
          onChange={(event) => {
            setFilter(event.target.value);
            setActive(0);
            setOpen(true);
          }}
          onFocus={() => setOpen(true)}
          onBlur={() => setOpen(false)}
          onKeyDown={onKeyDown}
        />
        {open && options.length > 0 && (
          <ul id={`${id}-options`} role="listbox" aria-label="Resources" className="listbox">
            {options.map((resource, index) => (
              <li
                key={resource.id}
                id={`${id}-option-${index}`}
                role="option"
                aria-selected={index === current}
                className={index === current ? 'option active' : 'option'}
                // mousedown, so the input keeps focus and does not close the list first
                onMouseDown={(event) => {
                  event.preventDefault();
                  add(resource);
                }}
              >
                {resource.name} <span className="muted">{resource.type}</span>
              </li>
            ))}
          </ul>
        )}
      </div>
      {value.length > 0 && (
        <ol ref={list} className="ranked" aria-label="Chosen resources, highest priority first">
          {value.map((resource, index) => (
            <li key={resource.id} data-resource-id={resource.id} onKeyDown={onItemKeyDown(index)}>
              <span className="rank">{index + 1}.</span> {resource.name} <span className="muted">{resource.type}</span>
              <span className="spacer" />
              <button type="button" className="icon" data-move="up" aria-label={`Move ${resource.name} up`} disabled={index === 0} onClick={() => moveItem(index, 'up')}>
                ↑
              </button>
              <button type="button" className="icon" data-move="down" aria-label={`Move ${resource.name} down`} disabled={index === value.length - 1} onClick={() => moveItem(index, 'down')}>
                ↓
              </button>
              <button type="button" className="icon" aria-label={`Remove ${resource.name}`} onClick={() => onChange(value.filter((r) => r.id !== resource.id))}>
                ✕
              </button>
            </li>
          ))}
        </ol>
      )}
      {error && (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      )}
    </fieldset>
  );
}
