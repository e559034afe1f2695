// The pages before sign-in: sign up, sign in, verify an email, reset a password, accept
// an invitation. Each link in mfh's emails lands on one of them with `?token=`.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { Link, Navigate, useNavigate, useSearchParams } from 'react-router';
import { useMutation, useQuery } from '@tanstack/react-query';
import { ApiError } from '../api/client';
import { auth } from '../api/endpoints';
import { Loading, Notice, ProblemBanner, TextField, fieldError } from '../components/ui';
import { useMe, useSignedIn } from '../session';

function AuthCard({ title, children, footer }: { title: string; children: ReactNode; footer?: ReactNode }) {
  return (
    <main className="auth-page">
      <div className="auth-card">
        <div className="auth-brand">MyFusionHelper</div>
        <h1>{title}</h1>
        {children}
      </div>
      {footer && <div className="auth-footer">{footer}</div>}
    </main>
  );
}

const PASSWORD_HINT = 'At least 10 characters; common passwords are refused.';

export function SignUpPage() {
  const [form, setForm] = useState({ name: '', email: '', account_name: '', password: '' });
  const m = useMutation({ mutationFn: auth.register });
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [k]: e.target.value });
  const err = m.error;
  // 409 means the address is taken: say so beside the email field.
  const emailError = fieldError(err, 'email') ?? (err instanceof ApiError && err.status === 409 ? err.detail : undefined);

  if (m.isSuccess)
    return (
      <AuthCard title="Check your email" footer={<Link to="/signin">Back to sign in</Link>}>
        <Notice kind="success">
          We sent a verification link to <strong>{m.data.email}</strong>. Open it to activate your account, then sign in.
        </Notice>
      </AuthCard>
    );

  return (
    <AuthCard
      title="Create your account"
      footer={
        <>
          Already have an account? <Link to="/signin">Sign in</Link>
        </>
      }
    >
      <p className="muted">Start a 14-day trial. No card needed.</p>
      <form
        noValidate
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          m.mutate(form);
        }}
      >
        <TextField label="Your name" name="name" autoComplete="name" value={form.name} onChange={set('name')} error={fieldError(err, 'name')} required />
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          value={form.email}
          onChange={set('email')}
          error={emailError}
          required
        />
        <TextField
          label="Company or account name"
          name="account_name"
          autoComplete="organization"
          value={form.account_name}
          onChange={set('account_name')}
          error={fieldError(err, 'account_name')}
          required
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={form.password}
          onChange={set('password')}
          error={fieldError(err, 'password')}
          hint={PASSWORD_HINT}
          required
        />
        {!(err instanceof ApiError && err.status === 409) && (
          <ProblemBanner error={err} fields={['name', 'email', 'account_name', 'password']} />
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={m.isPending}>
          {m.isPending ? 'Creating…' : 'Create account'}
        </button>
      </form>
    </AuthCard>
  );
}

export function SignInPage() {
  const [params] = useSearchParams();
  const [form, setForm] = useState({ email: params.get('email') ?? '', password: '' });
  const me = useMe();
  const signedIn = useSignedIn();
  const nav = useNavigate();
  const next = safeNext(params.get('next'));
  const m = useMutation({
    mutationFn: auth.login,
    onSuccess: (data) => {
      signedIn(data);
      nav(next, { replace: true });
    },
  });
  const resend = useMutation({ mutationFn: auth.resendVerification });
  if (me.data && !m.isPending && !m.isSuccess) return <Navigate to={next} replace />;
  const err = m.error;
  let banner: ReactNode = null;
  if (err instanceof ApiError && err.status === 403) {
    banner = (
      <div className="banner banner-warning" role="alert">
        <p>{err.detail}</p>
        {resend.isSuccess ? (
          <p>A new verification link is on its way to {form.email}.</p>
        ) : (
          <button type="button" className="btn btn-small" onClick={() => resend.mutate(form.email)} disabled={resend.isPending}>
            Send a new verification link
          </button>
        )}
        <ProblemBanner error={resend.error} />
      </div>
    );
  } else if (err instanceof ApiError && err.status === 401) {
    banner = (
      <div className="banner banner-error" role="alert">
        {err.detail || 'Wrong email or password.'}
      </div>
    );
  } else if (err) banner = <ProblemBanner error={err} fields={['email', 'password']} />;

  return (
    <AuthCard
      title="Sign in"
      footer={
        <>
          New here? <Link to="/signup">Create an account</Link>
        </>
      }
    >
      {params.get('reset') === 'done' && <Notice kind="success">Your password was changed. Sign in with the new one.</Notice>}
      {params.get('verified') === '1' && <Notice kind="success">Your email is verified. Sign in to continue.</Notice>}
      {params.get('joined') && <Notice kind="success">You joined {params.get('joined')}. Sign in to continue.</Notice>}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate(form);
        }}
      >
        <TextField
          label="Email"
          name="email"
          type="email"
          autoComplete="username"
          value={form.email}
          onChange={(e) => setForm({ ...form, email: e.target.value })}
          error={fieldError(err, 'email')}
          required
        />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={form.password}
          onChange={(e) => setForm({ ...form, password: e.target.value })}
          error={fieldError(err, 'password')}
          required
        />
        {banner}
        <button className="btn btn-primary btn-block" type="submit" disabled={m.isPending}>
          {m.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="auth-alt">
        <Link to="/reset">Forgot your password?</Link>
      </p>
    </AuthCard>
  );
}

/** Only same-site paths are followed after sign-in. */
function safeNext(next: string | null): string {
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/signin')) return next;
  return '/helpers';
}

/** Runs `f` once per mount even under StrictMode's double effects (a token works once). */
function useOnce(f: () => void) {
  const done = useRef(false);
  useEffect(() => {
    if (done.current) return;
    done.current = true;
    f();
  });
}

export function VerifyPage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const m = useMutation({ mutationFn: auth.verify });
  useOnce(() => {
    if (token) m.mutate(token);
  });
  return (
    <AuthCard title="Verify your email" footer={<Link to="/signin">Sign in</Link>}>
      {!token && <ProblemBanner error={new Error('This link has no token. Open the link from the verification email again.')} />}
      {m.isPending && <Loading what="Verifying" />}
      {m.isError && (
        <>
          <ProblemBanner error={m.error} />
          <p className="muted">Links work once and expire. Signing in tells you whether the address is verified already.</p>
        </>
      )}
      {m.isSuccess && (
        <>
          <Notice kind="success">
            <strong>{m.data.email}</strong> is verified.
          </Notice>
          <Link className="btn btn-primary btn-block" to={`/signin?verified=1&email=${encodeURIComponent(m.data.email)}`}>
            Continue to sign in
          </Link>
        </>
      )}
    </AuthCard>
  );
}

export function ResetPage() {
  const [params] = useSearchParams();
  const token = params.get('token');
  return token ? <ResetConfirm token={token} /> : <ResetRequest />;
}

function ResetRequest() {
  const [email, setEmail] = useState('');
  const m = useMutation({ mutationFn: auth.requestReset });
  return (
    <AuthCard title="Reset your password" footer={<Link to="/signin">Back to sign in</Link>}>
      {m.isSuccess ? (
        <Notice kind="success">
          If <strong>{email}</strong> has an account, a link to set a new password is on its way. It works once and expires.
        </Notice>
      ) : (
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            m.mutate(email);
          }}
        >
          <TextField
            label="Email"
            name="email"
            type="email"
            autoComplete="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            error={fieldError(m.error, 'email')}
            required
          />
          <ProblemBanner error={m.error} fields={['email']} />
          <button className="btn btn-primary btn-block" type="submit" disabled={m.isPending}>
            {m.isPending ? 'Sending…' : 'Send reset link'}
          </button>
        </form>
      )}
    </AuthCard>
  );
}

function ResetConfirm({ token }: { token: string }) {
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const nav = useNavigate();
  const m = useMutation({
    mutationFn: () => auth.confirmReset(token, password),
    onSuccess: () => nav('/signin?reset=done'),
  });
  return (
    <AuthCard title="Choose a new password" footer={<Link to="/signin">Back to sign in</Link>}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (password !== again) {
            setMismatch(true);
            return;
          }
          setMismatch(false);
          m.mutate();
        }}
      >
        <TextField
          label="New password"
          name="password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fieldError(m.error, 'password')}
          hint={PASSWORD_HINT}
          required
        />
        <TextField
          label="Repeat the new password"
          name="password_again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.target.value)}
          error={mismatch ? 'The two passwords differ.' : undefined}
          required
        />
        <ProblemBanner error={m.error} fields={['password']} />
        {m.error instanceof ApiError && (m.error.status === 400 || m.error.status === 410) && (
          <p>
            <Link to="/reset">Ask for a new link</Link>
          </p>
        )}
        <button className="btn btn-primary btn-block" type="submit" disabled={m.isPending}>
          {m.isPending ? 'Saving…' : 'Set new password'}
        </button>
      </form>
    </AuthCard>
  );
}

export function InvitePage() {
  const [params] = useSearchParams();
  const token = params.get('token') ?? '';
  const nav = useNavigate();
  const info = useQuery({ queryKey: ['invite', token], queryFn: () => auth.invite(token), enabled: !!token, retry: false });
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const m = useMutation({
    mutationFn: () => auth.acceptInvite(info.data?.user_exists ? { token } : { token, name, password }),
    onSuccess: (r) =>
      nav(`/signin?email=${encodeURIComponent(r.email)}&joined=${encodeURIComponent(info.data?.account_name ?? 'the account')}`),
  });
  if (!token)
    return (
      <AuthCard title="Accept invitation">
        <ProblemBanner error={new Error('This link has no token. Open the link from the invitation email again.')} />
      </AuthCard>
    );
  return (
    <AuthCard title="Accept invitation" footer={<Link to="/signin">Sign in</Link>}>
      {info.isPending && <Loading what="Reading the invitation" />}
      {info.isError && <ProblemBanner error={info.error} title="This invitation cannot be used" />}
      {info.data && (
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            m.mutate();
          }}
        >
          <p>
            You are invited to join <strong>{info.data.account_name}</strong> as <strong>{info.data.role}</strong>, with the
            address <strong>{info.data.email}</strong>.
          </p>
          {info.data.user_exists ? (
            <p className="muted">You already have a MyFusionHelper login; accept, then sign in with it.</p>
          ) : (
            <>
              <TextField label="Your name" name="name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} error={fieldError(m.error, 'name')} required />
              <TextField
                label="Choose a password"
                name="password"
                type="password"
                autoComplete="new-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                error={fieldError(m.error, 'password')}
                hint={PASSWORD_HINT}
                required
              />
            </>
          )}
          <ProblemBanner error={m.error} fields={['name', 'password']} />
          <button className="btn btn-primary btn-block" type="submit" disabled={m.isPending}>
            {m.isPending ? 'Joining…' : 'Accept invitation'}
          </button>
        </form>
      )}
    </AuthCard>
  );
}

export function NotFoundPage() {
  return (
    <AuthCard title="Page not found" footer={<Link to="/">Go to the dashboard</Link>}>
      <p className="muted">There is nothing at this address.</p>
    </AuthCard>
  );
}

