// RS256 signing keys and JWTs, on jose: the development token endpoint signs
// with them and publishes the public halves in its JWKS.

import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from "jose";

export interface SigningKey {
	kid: string;
	privateKey: CryptoKey;
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

/** A fresh 2048-bit RSA key; its kid is its RFC 7638 thumbprint. */
export async function generateSigningKey(): Promise<SigningKey> {
	const { privateKey, publicKey } = await generateKeyPair("RS256", { modulusLength: 2048 });
	const { n = "", e = "" } = await exportJWK(publicKey);
	const kid = await calculateJwkThumbprint({ kty: "RSA", n, e });
	return { kid, privateKey, publicJwk: { kty: "RSA", n, e, kid, alg: "RS256", use: "sig" } };
}

/** Signs `claims` as they are (any claim, of any type) as a compact JWS, RS256, with the key's kid in the header. */
export function signJwt(claims: Record<string, unknown>, key: Pick<SigningKey, "kid" | "privateKey">): Promise<string> {
	return new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: key.kid }).sign(key.privateKey);
}
