// The dashboard's build. `npm run build` writes web/dist, which the API serves at `/`
// (api.web_dir). `npm run dev` serves the sources with a proxy to a running API:
//   MFH_API=http://127.0.0.1:8080 npm run dev
// With MFH_DEV_API_KEY set the proxy also sends that key and answers /v1/auth/me from
// /v1/account, so pages can be worked on against an API without session sign-in. That
// shim exists only in the dev server; the built app always signs in for real.
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const api = process.env.MFH_API ?? 'http://127.0.0.1:8080';
const devKey = process.env.MFH_DEV_API_KEY;

function devSession(): Plugin {
  return {
    name: 'mfh-dev-session',
    configureServer(server) {
      if (!devKey) return;
      server.middlewares.use('/v1/auth/me', async (_req, res) => {
        let account: { account_id: string; name: string; plan: string; status: string };
        try {
          const r = await fetch(`${api}/v1/account`, { headers: { 'X-Api-Key': devKey } });
          account = await r.json();
        } catch (e) {
          res.statusCode = 502;
          res.end(JSON.stringify({ type: 'about:blank', title: 'Bad Gateway', status: 502, detail: `dev proxy: ${String(e)}` }));
          return;
        }
        res.setHeader('Content-Type', 'application/json');
        res.end(
          JSON.stringify({
            user: { email: 'dev@example.com', name: 'Dev (API key)', verified: true },
            account: { account_id: account.account_id, name: account.name },
            role: 'owner',
            plan: account.plan,
            status: account.status,
            csrf_token: 'dev',
          }),
        );
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), devSession()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 900,
  },
  server: {
    proxy: {
      '/v1': { target: api, headers: devKey ? { 'X-Api-Key': devKey } : {} },
      '/readyz': { target: api },
    },
  },
});
