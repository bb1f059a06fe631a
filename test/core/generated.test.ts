import { describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { GENERATED, checkerModule } from '../../scripts/gen-checker.ts'

describe('src/core/generated/entry-check.js', () => {
	test('is what scripts/gen-checker.ts makes from the current schema (run it after changing RegistryEntry)', () => {
		expect(readFileSync(GENERATED, 'utf8')).toBe(checkerModule())
	})
})
