import type * as grpc from '@grpc/grpc-js';
import { loadProtoPackage } from './grpc-proto.js';

/**
 * The kubelet's plugin registration (k8s.io/kubelet/pkg/apis/pluginregistration/v1, package
 * "pluginregistration") and its DRA service (k8s.io/kubelet/pkg/apis/dra/v1), written from their
 * published definitions: the field numbers and the package names are the wire contract.
 */
const REGISTRATION_PROTO = `
syntax = "proto3";
package pluginregistration;

message PluginInfo {
  string type = 1;
  string name = 2;
  string endpoint = 3;
  repeated string supported_versions = 4;
}
message RegistrationStatus {
  bool plugin_registered = 1;
  string error = 2;
}
message RegistrationStatusResponse {}
message InfoRequest {}

service Registration {
  rpc GetInfo(InfoRequest) returns (PluginInfo) {}
  rpc NotifyRegistrationStatus(RegistrationStatus) returns (RegistrationStatusResponse) {}
}
`;

const DRA_PROTO = `
syntax = "proto3";
package k8s.io.kubelet.pkg.apis.dra.v1;

service DRAPlugin {
  rpc NodePrepareResources(NodePrepareResourcesRequest) returns (NodePrepareResourcesResponse) {}
  rpc NodeUnprepareResources(NodeUnprepareResourcesRequest) returns (NodeUnprepareResourcesResponse) {}
}
message NodePrepareResourcesRequest {
  repeated Claim claims = 1;
}
message NodePrepareResourcesResponse {
  map<string, NodePrepareResourceResponse> claims = 1;
}
message NodePrepareResourceResponse {
  repeated Device devices = 1;
  string error = 2;
}
message Device {
  repeated string request_names = 1;
  string pool_name = 2;
  string device_name = 3;
  repeated string cdi_device_ids = 4;
}
message NodeUnprepareResourcesRequest {
  repeated Claim claims = 1;
}
message NodeUnprepareResourcesResponse {
  map<string, NodeUnprepareResourceResponse> claims = 1;
}
message NodeUnprepareResourceResponse {
  string error = 1;
}
message Claim {
  string namespace = 1;
  string uid = 2;
  string name = 3;
}
`;

/** What the kubelet's plugin manager checks in GetInfo: the plugin type and the gRPC service it speaks. */
export const DRA_PLUGIN_TYPE = 'DRAPlugin';
export const DRA_SERVICE_V1 = 'v1.DRAPlugin';

export interface ClaimRef {
  readonly namespace: string;
  readonly uid: string;
  readonly name: string;
}

export interface PreparedDevice {
  readonly request_names: readonly string[];
  readonly pool_name: string;
  readonly device_name: string;
  readonly cdi_device_ids: readonly string[];
}

let registration: grpc.ServiceClientConstructor | null = null;
let dra: grpc.ServiceClientConstructor | null = null;

export function registrationService(): grpc.ServiceClientConstructor {
  registration ??= loadProtoPackage<{ Registration: grpc.ServiceClientConstructor }>(REGISTRATION_PROTO, ['pluginregistration']).Registration;
  return registration;
}

export function draService(): grpc.ServiceClientConstructor {
  dra ??= loadProtoPackage<{ DRAPlugin: grpc.ServiceClientConstructor }>(DRA_PROTO, ['k8s', 'io', 'kubelet', 'pkg', 'apis', 'dra', 'v1']).DRAPlugin;
  return dra;
}
