/**
 * Where worker and client commands find the signaling server: a command-line flag beats the
 * environment, which beats the [signaling] section, which holds the defaults.
 */
import type { SleapRtcConfig } from './load.js';

export const SIGNALING_ENV = {
  server_url: 'SLEAP_RTC_SERVER',
  room_id: 'SLEAP_RTC_ROOM',
  token: 'SLEAP_RTC_TOKEN',
} as const;

export interface SignalingSettings {
  server_url: string;
  room_id: string | undefined;
  token: string | undefined;
}

/** Empty flags and empty environment variables count as unset. */
export function resolveSignaling(
  config: Pick<SleapRtcConfig, 'signaling'>,
  flags: { server_url?: string | undefined; room_id?: string | undefined; token?: string | undefined } = {},
  env: NodeJS.ProcessEnv = process.env,
): SignalingSettings {
  const pick = (key: keyof typeof SIGNALING_ENV): string | undefined =>
    flags[key] || env[SIGNALING_ENV[key]] || config.signaling[key] || undefined;
  return {
    server_url: pick('server_url') ?? config.signaling.server_url,
    room_id: pick('room_id'),
    token: pick('token'),
  };
}
