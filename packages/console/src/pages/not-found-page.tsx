import { Link } from 'react-router';

export function NotFoundPage() {
  return (
    <section aria-labelledby="not-found-title">
      <h1 id="not-found-title">Page not found</h1>
      <p>
        Nothing lives at this address. <Link to="/tokens">Go to your API tokens</Link>.
      </p>
    </section>
  );
}
