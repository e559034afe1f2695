// The signed-in frame: a header with the account and sign-out, and the section nav,
// which collapses behind a menu button on narrow screens.
import { useEffect, useState, type ReactNode } from 'react';
import { NavLink, useLocation, useNavigate } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { auth } from '../api/endpoints';
import { setCsrfToken } from '../api/client';
import type { Me } from '../api/types';
import { ErrorBoundary } from './ErrorBoundary';
import { ME_KEY } from '../session';

const SECTIONS = [
  { to: '/helpers', label: 'Helpers' },
  { to: '/executions', label: 'Executions' },
  { to: '/connections', label: 'Connections' },
  { to: '/explorer', label: 'Explorer' },
  { to: '/insights', label: 'Insights' },
  { to: '/settings', label: 'Settings' },
];

export function Layout({ me, children }: { me: Me; children: ReactNode }) {
  const [open, setOpen] = useState(false);
  const loc = useLocation();
  const nav = useNavigate();
  const qc = useQueryClient();
  useEffect(() => setOpen(false), [loc.pathname]);

  async function signOut() {
    try {
      await auth.logout();
    } catch {
      /* signed out locally either way */
    }
    setCsrfToken(null);
    qc.clear();
    qc.setQueryData(ME_KEY, null);
    nav('/signin');
  }

  return (
    <div className={`shell${open ? ' nav-open' : ''}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <button
          type="button"
          className="nav-toggle"
          aria-expanded={open}
          aria-controls="main-nav"
          aria-label={open ? 'Close menu' : 'Open menu'}
          onClick={() => setOpen((o) => !o)}
        >
          <span aria-hidden="true">{open ? '✕' : '☰'}</span>
        </button>
        <NavLink to="/helpers" className="brand">
          MyFusionHelper
        </NavLink>
        <div className="topbar-account">
          <span className="account-name" title={me.user.email}>
            {me.account.name}
          </span>
          <span className={`badge badge-plan`}>{me.plan}</span>
          <button type="button" className="btn btn-small" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="main-nav" className="sidenav" aria-label="Sections">
        <div className="sidenav-inner">
        <ul>
          {SECTIONS.map((s) => (
            <li key={s.to}>
              <NavLink to={s.to}>{s.label}</NavLink>
            </li>
          ))}
        </ul>
        <div className="sidenav-user">
          Signed in as <strong>{me.user.name || me.user.email}</strong>
          <br />
          <span className="muted">{me.role}</span>
        </div>
        </div>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        <ErrorBoundary resetKey={loc.pathname}>{children}</ErrorBoundary>
      </main>
    </div>
  );
}
