{{/*
The chart's name, and the release's full name. The full name is cut to 52 characters because a
StatefulSet's pods carry a controller-revision-hash label of its name plus 11 characters, and
a label value holds at most 63.
*/}}
{{- define "notifizz-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "notifizz-bridge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "notifizz-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "notifizz-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "notifizz-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "notifizz-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "notifizz-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "notifizz-bridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* embedded is "true" when the bridge runs the embedded NATS server (nats.url empty). */}}
{{- define "notifizz-bridge.embedded" -}}
{{- if not .Values.nats.url -}}true{{- end -}}
{{- end -}}

{{/*
members lists the static group's members, comma-separated: the pod names of the StatefulSet,
which are the members' names (each pod gives its own name as partitions.member).
*/}}
{{- define "notifizz-bridge.members" -}}
{{- $fullname := include "notifizz-bridge.fullname" . -}}
{{- $members := list -}}
{{- range $i := until (int .Values.replicaCount) -}}
{{- $members = append $members (printf "%s-%d" $fullname $i) -}}
{{- end -}}
{{- join "," $members -}}
{{- end -}}

{{/*
validate fails the rendering, with the value to set, on values the bridge would refuse at
start (or, for nats.url, that would split events between replicas reading different servers).
*/}}
{{- define "notifizz-bridge.validate" -}}
{{- $v := .Values -}}
{{- if and (gt (int $v.replicaCount) 1) (not $v.nats.url) -}}
{{- fail (printf "nats.url is required when replicaCount is %d: the replicas of a consumer group must share one external NATS server (the embedded server serves a single replica)" (int $v.replicaCount)) -}}
{{- end -}}
{{- if and (not $v.secret.name) (not (dig "notifizz" "dryRun" false $v.config)) -}}
{{- fail "secret.name is required: the name of an existing Secret holding the Notifizz SDK Secret Key (under the key secret.sdkSecretKey names), unless config.notifizz.dryRun is true" -}}
{{- end -}}
{{- if and $v.secret.name (not $v.secret.sdkSecretKey) (not (dig "notifizz" "dryRun" false $v.config)) -}}
{{- fail "secret.sdkSecretKey is required: the key of the Secret that holds the Notifizz SDK Secret Key" -}}
{{- end -}}
{{- $auth := list -}}
{{- if $v.secret.natsToken -}}{{- $auth = append $auth "secret.natsToken" -}}{{- end -}}
{{- if or $v.nats.user $v.secret.natsPassword -}}{{- $auth = append $auth "nats.user/secret.natsPassword" -}}{{- end -}}
{{- if $v.secret.natsCreds -}}{{- $auth = append $auth "secret.natsCreds" -}}{{- end -}}
{{- if $v.secret.natsNkeySeed -}}{{- $auth = append $auth "secret.natsNkeySeed" -}}{{- end -}}
{{- if gt (len $auth) 1 -}}
{{- fail (printf "set only one way to authenticate to NATS, not %s" (join " and " $auth)) -}}
{{- end -}}
{{- if or $v.secret.natsToken $v.secret.natsPassword $v.secret.natsCreds $v.secret.natsNkeySeed -}}
{{- if not $v.secret.name -}}
{{- fail "secret.name is required: the NATS credentials are read from that Secret" -}}
{{- end -}}
{{- end -}}
{{- if and $v.nats.user (not $v.secret.natsPassword) -}}
{{- fail "secret.natsPassword is required with nats.user: the key of the Secret that holds the password" -}}
{{- end -}}
{{- if and $v.secret.natsPassword (not $v.nats.user) -}}
{{- fail "nats.user is required with secret.natsPassword" -}}
{{- end -}}
{{- if and (not $v.nats.url) $v.secret.natsCreds -}}
{{- fail "secret.natsCreds needs an external server (nats.url): the embedded server cannot check a creds file; secure it with secret.natsToken, nats.user/secret.natsPassword or secret.natsNkeySeed" -}}
{{- end -}}
{{- if and (not $v.nats.url) (eq (len $auth) 0) (not $v.nats.embedded.allowNoAuth) -}}
{{- fail "the embedded NATS server (nats.url empty) is reachable from the cluster and must require authentication: set secret.natsToken (or nats.user/secret.natsPassword, or secret.natsNkeySeed), or nats.embedded.allowNoAuth=true on a network you trust" -}}
{{- end -}}
{{- if or $v.nats.tls.caFile $v.nats.tls.certFile $v.nats.tls.keyFile -}}
{{- if not $v.nats.tls.secretName -}}
{{- fail "nats.tls.secretName is required with nats.tls.caFile, certFile or keyFile: the Secret that holds them" -}}
{{- end -}}
{{- end -}}
{{- if ne (empty $v.nats.tls.certFile) (empty $v.nats.tls.keyFile) -}}
{{- fail "nats.tls.certFile and nats.tls.keyFile go together: set both or neither" -}}
{{- end -}}
{{- if gt (int $v.replicaCount) 1 -}}
{{- $count := int $v.partitions.count -}}
{{- if and (gt $count 0) (lt $count (int $v.replicaCount)) -}}
{{- fail (printf "partitions.count (%d) must be at least replicaCount (%d): a member without a partition would never receive a message" $count (int $v.replicaCount)) -}}
{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9_-]+$" (include "notifizz-bridge.fullname" .)) -}}
{{- fail (printf "the release's full name %q must hold only letters, digits, '-' and '_' when replicaCount > 1: its pod names are the group's member names (set fullnameOverride)" (include "notifizz-bridge.fullname" .)) -}}
{{- end -}}
{{- end -}}
{{- range $key := list "nats" "http" -}}
{{- if hasKey $v.config $key -}}
{{- fail (printf "config.%s is set by the chart from its values (nats.*, secret.*, service.httpPort): remove config.%s" $key $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $v.config "partitions" -}}
{{- fail "config.partitions is set by the chart from replicaCount and partitions.*: remove config.partitions" -}}
{{- end -}}
{{- end -}}
