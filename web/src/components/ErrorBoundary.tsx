// Catches a render error anywhere below it and shows what happened instead of a blank
// page, with a way back.
import { Component, type ErrorInfo, type ReactNode } from 'react';

interface State {
  error: Error | null;
}

export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error('Dashboard render error', error, info.componentStack);
  }

  componentDidUpdate(prev: { resetKey?: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="banner banner-error error-boundary" role="alert">
        <h2>Something went wrong on this page</h2>
        <p>{this.state.error.message || String(this.state.error)}</p>
        <p>
          <button type="button" className="btn" onClick={() => this.setState({ error: null })}>
            Try again
          </button>{' '}
          <a className="btn" href="/">
            Back to the dashboard
          </a>
        </p>
      </div>
    );
  }
}
