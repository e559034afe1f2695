// The dashboard's routes. Pages before sign-in are public; the rest need a session.
// The explorer and insights pages (CodeMirror, recharts) load on first visit.
import { lazy, Suspense, type ReactNode } from 'react';
import { Navigate, Route, Routes } from 'react-router';
import { Layout } from './components/Layout';
import { Loading } from './components/ui';
import { InvitePage, NotFoundPage, ResetPage, SignInPage, SignUpPage, VerifyPage } from './pages/auth';
import { HelperDetailPage, HelperTypesPage, HelpersPage, NewHelperPage } from './pages/helpers';
import { ExecutionDetailPage, ExecutionsPage } from './pages/executions';
import { ConnectionsPage } from './pages/connections';
import { SettingsPage } from './pages/settings';
import { RequireAuth } from './session';
import type { Me } from './api/types';

const ExplorerPage = lazy(() => import('./pages/explorer').then((m) => ({ default: m.ExplorerPage })));
const InsightsPage = lazy(() => import('./pages/insights').then((m) => ({ default: m.InsightsPage })));

function app(page: (me: Me) => ReactNode) {
  return (
    <RequireAuth>
      {(me) => (
        <Layout me={me}>
          <Suspense fallback={<Loading />}>{page(me)}</Suspense>
        </Layout>
      )}
    </RequireAuth>
  );
}

export function App() {
  return (
    <Routes>
      <Route path="/signup" element={<SignUpPage />} />
      <Route path="/signin" element={<SignInPage />} />
      <Route path="/verify" element={<VerifyPage />} />
      <Route path="/reset" element={<ResetPage />} />
      <Route path="/invite" element={<InvitePage />} />
      <Route path="/" element={<Navigate to="/helpers" replace />} />
      <Route path="/helpers" element={app(() => <HelpersPage />)} />
      <Route path="/helpers/new" element={app(() => <HelperTypesPage />)} />
      <Route path="/helpers/new/:type" element={app(() => <NewHelperPage />)} />
      <Route path="/helpers/:id" element={app(() => <HelperDetailPage />)} />
      <Route path="/executions" element={app(() => <ExecutionsPage />)} />
      <Route path="/executions/:id" element={app(() => <ExecutionDetailPage />)} />
      <Route path="/connections" element={app(() => <ConnectionsPage />)} />
      <Route path="/explorer" element={app(() => <ExplorerPage />)} />
      <Route path="/insights" element={app(() => <InsightsPage />)} />
      <Route path="/settings" element={app((me) => <SettingsPage me={me} />)} />
      <Route path="/settings/:tab" element={app((me) => <SettingsPage me={me} />)} />
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}
