export { type AddressClass, classifyAddress, isIpLiteral } from "./address-class.ts";
export {
  type DownloadedBody,
  DownloadFailedError,
  type DownloadFailure,
  type DownloadPublicUrlOptions,
  downloadPublicUrl,
} from "./download-public-url.ts";
export {
  allowsAddress,
  allowsHostname,
  EMPTY_ALLOWLIST,
  type HostAllowlist,
  parseHostAllowlist,
} from "./host-allowlist.ts";
export {
  bareHostname,
  checkPublicUrl,
  type HostLookup,
  type PublicTargetOptions,
  PublicTargetRefusedError,
  pinnedLookup,
  type ResolvedAddress,
  resolvePublicTarget,
  systemLookup,
  type TargetLabel,
} from "./public-target.ts";
