// Compact JWS with RS256, on node:crypto alone: the development token
// endpoint signs with it and the development control plane verifies with it.

import {
	createHash,
	createPublicKey,
	generateKeyPairSync,
	type JsonWebKey,
	type KeyObject,
	sign,
	verify,
} from "node:crypto";

export interface SigningKey {
	kid: string;
	privateKey: KeyObject;
	/** The public half as a JWK, with kid, alg and use, as a JWKS lists it. */
	publicJwk: PublicJwk;
}

export interface PublicJwk {
	kty: "RSA";
	n: string;
	e: string;
	kid: string;
	alg: "RS256";
	use: "sig";
}

export function base64url(data: Buffer | string): string {
	return Buffer.from(data).toString("base64url");
}

/** A fresh 2048-bit RSA key; its kid is its RFC 7638 thumbprint. */
export function generateSigningKey(): SigningKey {
	const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
	const { n, e } = publicKey.export({ format: "jwk" }) as { n: string; e: string };
	const thumbprint = createHash("sha256")
		.update(JSON.stringify({ e, kty: "RSA", n }))
		.digest();
	const kid = base64url(thumbprint);
	return { kid, privateKey, publicJwk: { kty: "RSA", n, e, kid, alg: "RS256", use: "sig" } };
}

/** Signs `claims` as a compact JWS, RS256, with the key's kid in the header. */
export function signJwt(claims: Record<string, unknown>, key: Pick<SigningKey, "kid" | "privateKey">): string {
	const header = { alg: "RS256", typ: "JWT", kid: key.kid };
	const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
	return `${input}.${base64url(sign("sha256", Buffer.from(input), key.privateKey))}`;
}

export interface DecodedJwt {
	header: Record<string, unknown>;
	claims: Record<string, unknown>;
	signingInput: string;
	signature: Buffer;
}

const SEGMENT = /^[A-Za-z0-9_-]*$/;

function jsonObject(segment: string): Record<string, unknown> | undefined {
	try {
		const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
		return typeof value === "object" && value !== null && !Array.isArray(value)
			? (value as Record<string, unknown>)
			: undefined;
	} catch {
		return undefined;
	}
}

/** Splits a compact JWS without verifying it; undefined when it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
	const parts = token.split(".");
	if (parts.length !== 3 || !parts.every((part) => SEGMENT.test(part))) return undefined;
	const [rawHeader = "", rawClaims = "", rawSignature = ""] = parts;
	const header = jsonObject(rawHeader);
	const claims = jsonObject(rawClaims);
	if (header === undefined || claims === undefined) return undefined;
	return {
		header,
		claims,
		signingInput: `${rawHeader}.${rawClaims}`,
		signature: Buffer.from(rawSignature, "base64url"),
	};
}

/** Whether an RSA JWK's key signed `jwt` with RS256; false for a key that cannot be imported. */
export function verifiesWith(jwt: DecodedJwt, jwk: JsonWebKey): boolean {
	try {
		const key = createPublicKey({ key: jwk, format: "jwk" });
		return verify("sha256", Buffer.from(jwt.signingInput), key, jwt.signature);
	} catch {
		return false;
	}
}
