/** Catch what a call throws, checked to be of the expected class, so tests can assert on its fields. */
import { expect } from 'bun:test'

type Class<T> = abstract new (...args: never[]) => T

/** The error `fn` throws; fails the test if it returns, or throws something that is not a `cls`. */
export function caught<T extends Error>(cls: Class<T>, fn: () => unknown): T {
	try {
		fn()
	} catch (error) {
		expect(error).toBeInstanceOf(cls)
		return error as T
	}
	throw new Error(`expected ${cls.name} to be thrown, but the call returned`)
}

/** The error the promise (or async function) rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejected<T extends Error>(cls: Class<T>, work: Promise<unknown> | (() => Promise<unknown>)): Promise<T> {
	try {
		await (typeof work === 'function' ? work() : work)
	} catch (error) {
		expect(error).toBeInstanceOf(cls)
		return error as T
	}
	throw new Error(`expected ${cls.name} to be thrown, but the call resolved`)
}
