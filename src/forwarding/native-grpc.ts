/**
 * Native gRPC needs HTTP/2 trailers end to end, and a Worker's fetch() can
 * neither send nor return them: forwarded, the call would reach the app
 * without its framing and come back without its status, which a gRPC client
 * reports as a confusing INTERNAL error. gRPC-web and Connect carry their
 * status in the body and pass through. So a native gRPC call is answered
 * here, before anything is woken, in the form every gRPC client reads: a
 * trailers-only response whose status is UNIMPLEMENTED.
 */
export function isNativeGrpc(headers: Headers): boolean {
	const type = headers.get("content-type");
	if (type === null || !type.startsWith("application/grpc")) return false;
	// application/grpc, application/grpc+proto, application/grpc+json; not application/grpc-web*.
	const subtype = type.slice("application/grpc".length);
	return subtype === "" || subtype.startsWith("+") || subtype.startsWith(";");
}

const grpcUnimplemented = "12";
const message =
	"Native gRPC cannot pass through this edge (a Cloudflare Worker carries no HTTP/2 trailers); use gRPC-web or Connect";

export function nativeGrpcRefusal(): Response {
	return new Response(null, {
		status: 200,
		headers: {
			"content-type": "application/grpc",
			"grpc-status": grpcUnimplemented,
			// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses").
			"grpc-message": encodeURIComponent(message),
		},
	});
}
