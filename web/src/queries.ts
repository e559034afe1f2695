// Query keys and the shared queries several pages read.
import { useQuery } from '@tanstack/react-query';
import { connections, helperTypes, helpers } from './api/endpoints';
import type { Connection, HelperType } from './api/types';

export const keys = {
  helperTypes: ['helper-types'] as const,
  helpers: ['helpers'] as const,
  helper: (id: string) => ['helpers', id] as const,
  executions: ['executions'] as const,
  execution: (id: string) => ['executions', 'one', id] as const,
  connections: ['connections'] as const,
  /** Not under `connections`: creating or deleting one does not drop every tag list. */
  connectionTags: (id: string) => ['connection-tags', id] as const,
  account: ['account'] as const,
  team: ['team'] as const,
  apiKeys: ['api-keys'] as const,
  prefs: ['notification-preferences'] as const,
};

export function useHelperTypes() {
  return useQuery({ queryKey: keys.helperTypes, queryFn: helperTypes.list, staleTime: Infinity });
}

export function useHelperType(name: string | undefined): HelperType | undefined {
  const q = useHelperTypes();
  return q.data?.find((t) => t.name === name);
}

export function useHelpers() {
  return useQuery({ queryKey: keys.helpers, queryFn: () => helpers.list() });
}

export function useConnections() {
  return useQuery({ queryKey: keys.connections, queryFn: async () => (await connections.list()).connections });
}

/** The tags of connection `id` (or the sandbox), for the helper form's tag picker: asked once
 * per connection and kept a few minutes, shared by every tag field of the form. A 409 (the
 * CRM cannot list its tags) is not retried; the field falls back to typing an id. */
export function useConnectionTags(id: string | undefined) {
  return useQuery({
    queryKey: keys.connectionTags(id ?? ''),
    queryFn: async () => (await connections.tags(id ?? '')).tags,
    enabled: !!id,
    staleTime: 5 * 60_000,
    refetchOnWindowFocus: false,
  });
}

/** The built-in sandbox CRM every account has; not in `GET /v1/connections`. */
export const SANDBOX = 'sandbox';

export function connectionLabel(id: string, list: Connection[] | undefined): string {
  if (id === SANDBOX) return 'Sandbox CRM (demo contacts)';
  const c = list?.find((x) => x.connection_id === id);
  return c ? `${c.name} (${c.platform})` : id;
}

export const CATEGORY_LABELS: Record<string, string> = {
  tagging: 'Tagging',
  contact: 'Contact',
  data: 'Data',
  automation: 'Automation',
  integration: 'Integrations',
  notification: 'Notifications',
  analytics: 'Analytics',
  platform: 'Platform',
};
