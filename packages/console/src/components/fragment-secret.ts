import { useEffect, useState } from 'react';
import { useLocation, useNavigate } from 'react-router';

function readFragment(): string {
  try {
    return decodeURIComponent(window.location.hash.slice(1)).trim();
  } catch {
    return '';
  }
}

/**
 * The one-time secret of a setup or invitation link, which travels in the URL
 * fragment (browsers never send it to a server, nor in a Referer). It is read
 * into memory, then taken out of the address bar and the history entry, so it
 * is not left behind for the next person at this browser. Never stored. A link
 * pasted into a tab already on the page (only the fragment changes, so nothing
 * reloads) is read the same way.
 */
export function useFragmentSecret(): { secret: string; forget(): void } {
  const location = useLocation();
  const navigate = useNavigate();
  // Read during the first render, before the effect below clears it.
  const [secret, setSecret] = useState(readFragment);
  useEffect(() => {
    const fresh = readFragment();
    if (fresh) setSecret(fresh);
    if (window.location.hash !== '' || window.location.href.endsWith('#')) navigate({ pathname: location.pathname, search: location.search }, { replace: true, state: location.state });
  }, [navigate, location.hash, location.pathname, location.search, location.state]);
  return { secret, forget: () => setSecret('') };
}
