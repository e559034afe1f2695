// Who is signed in: `GET /v1/auth/me`, cached as the query `['me']`. A 401 from any
// call clears it, which sends the user to the sign-in page.
import { useEffect, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Navigate, useLocation } from 'react-router';
import { ApiError, onUnauthorized, setCsrfToken } from './api/client';
import { auth } from './api/endpoints';
import type { Me } from './api/types';
import { Loading, ProblemBanner } from './components/ui';

export const ME_KEY = ['me'] as const;

/** The signed-in user, `null` when nobody is. */
export function useMe() {
  return useQuery<Me | null>({
    queryKey: ME_KEY,
    queryFn: async () => {
      try {
        const me = await auth.me();
        setCsrfToken(me.csrf_token);
        return me;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          setCsrfToken(null);
          return null;
        }
        throw e;
      }
    },
    staleTime: 60_000,
    retry: false,
  });
}

/** Stores a sign-in's answer as the session. */
export function useSignedIn() {
  const qc = useQueryClient();
  return (me: Me) => {
    setCsrfToken(me.csrf_token);
    qc.setQueryData(ME_KEY, me);
  };
}

/** Clears every cached answer when any call finds the session gone. */
export function SessionWatcher() {
  const qc = useQueryClient();
  useEffect(
    () =>
      onUnauthorized(() => {
        setCsrfToken(null);
        qc.setQueryData(ME_KEY, null);
      }),
    [qc],
  );
  return null;
}

/** Renders `children` for a signed-in user, else sends them to sign in and back. */
export function RequireAuth({ children }: { children: (me: Me) => ReactNode }) {
  const me = useMe();
  const loc = useLocation();
  if (me.isPending) return <Loading what="Signing you in" />;
  if (me.isError)
    return (
      <main className="auth-page">
        <ProblemBanner error={me.error} title="The dashboard could not reach the API" />
        <button className="btn" type="button" onClick={() => me.refetch()}>
          Try again
        </button>
      </main>
    );
  if (!me.data) {
    const next = loc.pathname + loc.search;
    return <Navigate to={`/signin${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace />;
  }
  return <>{children(me.data)}</>;
}

/** Whether the role may manage the team and API keys (owner, admin). */
export function canManage(me: Me): boolean {
  return me.role === 'owner' || me.role === 'admin';
}
