import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { Tooltip } from 'radix-ui';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { RouterProvider, createBrowserRouter } from 'react-router';
import { ApiProblem } from './api/client.ts';
import { Layout } from './components/layout.tsx';
import { AuditPage } from './pages/audit-page.tsx';
import { MembersPage } from './pages/members-page.tsx';
import { InvitePage } from './pages/invite-page.tsx';
import { OrganizationPage } from './pages/organization-page.tsx';
import { NotFoundPage } from './pages/not-found-page.tsx';
import { ResourcesPage } from './pages/resources-page.tsx';
import { SetupPage } from './pages/setup-page.tsx';
import { SignInPage } from './pages/sign-in-page.tsx';
import { TokensPage } from './pages/tokens-page.tsx';
import { SessionProvider } from './session.tsx';
import './styles.css';

const queryClient = new QueryClient({
  defaultOptions: {
    // A problem answer (4xx) will not change by asking again.
    queries: { retry: (count, error) => !(error instanceof ApiProblem && error.status < 500) && count < 2, refetchOnWindowFocus: true },
  },
});

const router = createBrowserRouter([
  { path: '/sign-in', element: <SignInPage /> },
  // Opened from one-time links (the token in the fragment); no session needed.
  { path: '/setup', element: <SetupPage /> },
  { path: '/invite', element: <InvitePage /> },
  {
    element: <Layout />,
    children: [
      { index: true, element: <TokensPage /> },
      { path: 'tokens', element: <TokensPage /> },
      // Loaded on first visit: the chart library is most of the bundle, and most people never open these pages.
      { path: 'clients', lazy: () => import('./pages/clients-page.tsx').then((page) => ({ Component: page.ClientsPage })) },
      { path: 'clients/:id', lazy: () => import('./pages/clients-page.tsx').then((page) => ({ Component: page.ClientPage })) },
      { path: 'resources', element: <ResourcesPage /> },
      { path: 'members', element: <MembersPage /> },
      { path: 'audit', element: <AuditPage /> },
      { path: 'organization', element: <OrganizationPage /> },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <SessionProvider>
        <Tooltip.Provider delayDuration={300}>
          <RouterProvider router={router} />
        </Tooltip.Provider>
      </SessionProvider>
    </QueryClientProvider>
  </StrictMode>,
);
