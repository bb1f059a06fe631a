/** The served API under load: 5 s at 64 connections, mixed reads and selects of a locked model, no errors. */
import { describe, expect, test } from 'bun:test'
import { buildRegistry, runLoad } from '../../scripts/load-test.ts'
import { startServer } from '../helpers/binary.ts'
import { tempDir } from '../helpers/registry.ts'

describe('load', () => {
	test('64 connections for 5 s: every request answered 200, none failed', async () => {
		using dir = tempDir()
		const registry = buildRegistry(dir.path)
		await using server = await startServer(registry)
		const result = await runLoad(server.url, { seconds: 5, connections: 64 })
		expect(result.errors).toEqual({})
		expect(Object.keys(result.byKind).sort()).toEqual(['list', 'list_role', 'metrics', 'select_locked', 'select_role'])
		expect(result.requests).toBeGreaterThan(500) // a floor far below what a loaded 2-core machine does
	})
})
