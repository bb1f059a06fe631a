/**
 * @module
 * Settings from the environment, read once by the adapters and passed down as plain values. Nothing in
 * the core reads `process.env` itself.
 */
import { RequestError } from './errors.ts'

export const DEFAULT_REGISTRY = 'configs/model_registry.json'

/** Everything configurable, with the environment variable that sets it. */
export interface Settings {
	/** IMAGEWORKS_REGISTRY (or --registry). */
	registryPath: string
	/** IMAGEWORKS_API_TOKEN: when set, every route but /healthz needs `Authorization: Bearer <token>`. */
	apiToken: string | undefined
	/** IMAGEWORKS_LOCK_TIMEOUT: seconds to wait for another writer. */
	lockTimeout: number
	/** Request bodies over this many bytes get 413 (a 20 MB image is about 27 MB as base64). */
	maxBodyBytes: number
}

/** A bad environment value: a usage error, not a failed operation. */
export class InvalidSetting extends RequestError {
	override name = 'InvalidSetting'
	override readonly code = 'invalid_setting'
}

function seconds(env: Record<string, string | undefined>, key: string, fallback: number): number {
	const value = (env[key] ?? '').trim()
	if (!value) return fallback
	const parsed = Number(value)
	if (!Number.isFinite(parsed) || parsed <= 0) {
		throw new InvalidSetting(`${key}=${JSON.stringify(value)} must be a positive number of seconds`)
	}
	return parsed
}

/**
 * Settings from `env`, with `overrides` (from command-line options) winning.
 * @throws {InvalidSetting}
 */
export function readSettings(env: Record<string, string | undefined>, overrides: Partial<Settings> = {}): Settings {
	const settings: Settings = {
		registryPath: env['IMAGEWORKS_REGISTRY'] || DEFAULT_REGISTRY,
		apiToken: env['IMAGEWORKS_API_TOKEN'] || undefined,
		lockTimeout: seconds(env, 'IMAGEWORKS_LOCK_TIMEOUT', 10),
		maxBodyBytes: 32 << 20
	}
	for (const [key, value] of Object.entries(overrides)) {
		if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value
	}
	return settings
}
