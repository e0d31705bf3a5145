// Verifications per hour over the last day, stacked by outcome code, drawn by Recharts.
import { useQuery } from '@tanstack/react-query';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { api, unwrap } from '../api/client.ts';
import { ErrorAlert } from './dialog-footer.tsx';

// Colour-blind-safe (Okabe-Ito); VALID green, refusals warm.
const CODE_COLOURS: Record<string, string> = {
  VALID: '#009E73',
  INSUFFICIENT_SCOPE: '#E69F00',
  FORBIDDEN_RESOURCE: '#F0E442',
  EXPIRED: '#56B4E9',
  REVOKED: '#D55E00',
  DISABLED: '#CC79A7',
  MALFORMED: '#555555',
  NOT_FOUND: '#000000',
  IP_NOT_ALLOWED: '#882255',
  RATE_LIMITED: '#0072B2',
  USAGE_EXCEEDED: '#999933',
};
const HOUR_MS = 3_600_000;
const hour = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export function UsageChart({ organizationId, clientId }: { organizationId: string; clientId: string }) {
  const usage = useQuery({
    queryKey: ['usage', organizationId, clientId],
    queryFn: async () => unwrap(await api.GET('/api/v1/usage', { params: { query: { clientId, granularity: 'hour' } } })),
    refetchInterval: 30_000,
  });
  if (usage.error) return <ErrorAlert error={usage.error} />;
  if (!usage.data) return <p role="status">Loading usage…</p>;
  const codes = [...new Set(usage.data.buckets.flatMap((bucket) => Object.keys(bucket.counts)))].sort();
  // The API lists only buckets with counts; the chart shows every hour of the range.
  const byStart = new Map(usage.data.buckets.map((bucket) => [new Date(bucket.start).getTime(), bucket.counts]));
  const rows: Array<Record<string, string | number>> = [];
  for (let at = new Date(usage.data.from).getTime(); at < new Date(usage.data.to).getTime(); at += HOUR_MS) {
    rows.push({ at: hour.format(new Date(at)), ...byStart.get(at) });
  }
  const total = usage.data.buckets.reduce((sum, bucket) => sum + bucket.total, 0);
  return (
    <figure className="chart" aria-label={`Verifications in the last 24 hours: ${total}`}>
      {total === 0 ? (
        <p className="muted">No verifications of this client’s tokens in the last 24 hours.</p>
      ) : (
        <ResponsiveContainer width="100%" height={260}>
          <BarChart data={rows}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis dataKey="at" />
            <YAxis allowDecimals={false} />
            <Tooltip />
            <Legend />
            {codes.map((code) => (
              <Bar key={code} dataKey={code} stackId="codes" fill={CODE_COLOURS[code] ?? '#999999'} isAnimationActive={false} />
            ))}
          </BarChart>
        </ResponsiveContainer>
      )}
      <figcaption className="muted">Verifications per hour over the last 24 hours, by outcome ({total} in all).</figcaption>
    </figure>
  );
}
