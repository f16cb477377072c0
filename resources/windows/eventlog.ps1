# spylog event-log worker (Windows PowerShell 5.1 or PowerShell 7).
#
# Started by spylog (src/engine/sources/eventlog.ts) as
#   powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -File eventlog.ps1
# Reads one JSON line of configuration on stdin, then prints one JSON object per line on stdout
# (protocol: src/engine/sources/eventlog-worker.ts). Exits when stdin is closed.
#
# Order of work: subscribe to every channel first (new events queue up in PowerShell's event
# queue), then catch up on what was written since spylog's saved record id, then print the queued
# events. Records printed twice are dropped by spylog by record id, so nothing is lost or counted
# twice.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$utf8 = New-Object System.Text.UTF8Encoding -ArgumentList $false
$stdout = New-Object System.IO.StreamWriter -ArgumentList ([Console]::OpenStandardOutput()), $utf8
$stdout.AutoFlush = $true
$script:lastWrite = [DateTime]::UtcNow

function Write-Message([System.Collections.IDictionary]$message) {
  # -Compress keeps the object on one line: newlines inside values are escaped by JSON
  $stdout.WriteLine(($message | ConvertTo-Json -Compress -Depth 3))
  $script:lastWrite = [DateTime]::UtcNow
}

if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
  # Constrained Language Mode (AppLocker/WDAC): .NET objects cannot be created here
  $stdout.WriteLine('{"type":"fatal","fallback":true,"message":"PowerShell runs in ' + $ExecutionContext.SessionState.LanguageMode + ' mode"}')
  exit 3
}

$configLine = [Console]::In.ReadLine()
if ($null -eq $configLine) { exit 0 }
try {
  $config = $configLine | ConvertFrom-Json
} catch {
  Write-Message ([ordered]@{ type = 'fatal'; fallback = $false; message = "bad configuration line: $($_.Exception.Message)" })
  exit 2
}

$render = [bool]$config.render
$heartbeat = [int]$config.heartbeat
Write-Message ([ordered]@{ type = 'hello'; v = 1; mode = [string]$ExecutionContext.SessionState.LanguageMode; ps = [string]$PSVersionTable.PSVersion })

Add-Type -AssemblyName System.Core
$LogName = [System.Diagnostics.Eventing.Reader.PathType]::LogName

function Send-Event([string]$channel, [System.Diagnostics.Eventing.Reader.EventRecord]$record) {
  $msg = $null
  if ($render) {
    try { $msg = $record.FormatDescription() } catch { $msg = $null }
  }
  $time = $null
  if ($null -ne $record.TimeCreated) { $time = $record.TimeCreated.ToUniversalTime().ToString('o') }
  Write-Message ([ordered]@{
    type = 'event'; ch = $channel; rid = [long]$record.RecordId; t = $time
    provider = $record.ProviderName; id = [int]$record.Id; xml = $record.ToXml(); msg = $msg
  })
}

function Get-NewestRecordId([string]$channel) {
  $q = New-Object System.Diagnostics.Eventing.Reader.EventLogQuery -ArgumentList $channel, $LogName, '*'
  $q.ReverseDirection = $true
  $reader = New-Object System.Diagnostics.Eventing.Reader.EventLogReader -ArgumentList $q
  try {
    $newest = $reader.ReadEvent()
    if ($null -eq $newest) { return $null }
    $id = [long]$newest.RecordId
    $newest.Dispose()
    return $id
  } finally { $reader.Dispose() }
}

function Read-Query([string]$channel, [string]$xpath) {
  $q = New-Object System.Diagnostics.Eventing.Reader.EventLogQuery -ArgumentList $channel, $LogName, $xpath
  $q.ReverseDirection = $false
  $reader = New-Object System.Diagnostics.Eventing.Reader.EventLogReader -ArgumentList $q
  try {
    while ($true) {
      $record = $reader.ReadEvent()
      if ($null -eq $record) { break }
      Send-Event $channel $record
      $record.Dispose()
    }
  } finally { $reader.Dispose() }
}

# 1. subscribe
$watchers = @{}
$index = 0
foreach ($ch in $config.channels) {
  $index++
  $sourceId = "spylog.eventlog.$index"
  try {
    $query = New-Object System.Diagnostics.Eventing.Reader.EventLogQuery -ArgumentList $ch.ch, $LogName, $ch.live
    $watcher = New-Object System.Diagnostics.Eventing.Reader.EventLogWatcher -ArgumentList $query
    Register-ObjectEvent -InputObject $watcher -EventName EventRecordWritten -SourceIdentifier $sourceId | Out-Null
    $watcher.Enabled = $true
    $watchers[$sourceId] = @{ channel = [string]$ch.ch; watcher = $watcher; config = $ch }
  } catch {
    Write-Message ([ordered]@{ type = 'error'; ch = [string]$ch.ch; message = "cannot subscribe: $($_.Exception.Message)" })
  }
}

# 2. catch up, per channel, oldest first
foreach ($entry in @($watchers.Values)) {
  $ch = $entry.config
  try {
    $newest = Get-NewestRecordId $entry.channel
    $xpath = $ch.catchup
    if ($null -ne $ch.after -and $null -ne $newest -and $newest -lt [long]$ch.after) {
      Write-Message ([ordered]@{ type = 'reset'; ch = $entry.channel; last = $newest })
      $xpath = $ch.reset
    }
    if ($null -ne $xpath -and $xpath -ne '') { Read-Query $entry.channel $xpath }
    Write-Message ([ordered]@{ type = 'caughtup'; ch = $entry.channel; last = $newest })
  } catch {
    Write-Message ([ordered]@{ type = 'error'; ch = $entry.channel; message = "catch-up failed: $($_.Exception.Message)" })
  }
}

# 3. live events (the queue holds those written during the catch-up) until stdin closes or
# spylog is gone. Stdin is watched with BeginRead (runs on a pool thread; Console.In's
# ReadLineAsync would block this loop), the parent process every few seconds.
$stdinStream = [Console]::OpenStandardInput()
$stdinBuffer = New-Object byte[] 256
$stdinRead = $stdinStream.BeginRead($stdinBuffer, 0, $stdinBuffer.Length, $null, $null)
$parentId = 0
if ($null -ne $config.PSObject.Properties['parent'] -and $null -ne $config.parent) { $parentId = [int]$config.parent }
$lastParentCheck = [DateTime]::UtcNow
try {
  while ($true) {
    if ($stdinRead.IsCompleted) {
      if ($stdinStream.EndRead($stdinRead) -le 0) { break }
      $stdinRead = $stdinStream.BeginRead($stdinBuffer, 0, $stdinBuffer.Length, $null, $null)
    }
    if ($parentId -gt 0 -and ([DateTime]::UtcNow - $lastParentCheck).TotalSeconds -ge 5) {
      $lastParentCheck = [DateTime]::UtcNow
      if ($null -eq (Get-Process -Id $parentId -ErrorAction SilentlyContinue)) { break }
    }
    $queued = Wait-Event -Timeout 1
    if ($null -ne $queued) {
      try {
        $entry = $watchers[$queued.SourceIdentifier]
        if ($null -ne $entry) {
          $args0 = $queued.SourceEventArgs
          if ($null -ne $args0.EventException) {
            Write-Message ([ordered]@{ type = 'error'; ch = $entry.channel; message = $args0.EventException.Message })
          } elseif ($null -ne $args0.EventRecord) {
            Send-Event $entry.channel $args0.EventRecord
            $args0.EventRecord.Dispose()
          }
        }
      } finally {
        Remove-Event -EventIdentifier $queued.EventIdentifier -ErrorAction SilentlyContinue
      }
    }
    if ($heartbeat -gt 0 -and ([DateTime]::UtcNow - $script:lastWrite).TotalSeconds -ge $heartbeat) {
      Write-Message ([ordered]@{ type = 'hb' })
    }
  }
} finally {
  foreach ($entry in $watchers.Values) {
    try { $entry.watcher.Enabled = $false; $entry.watcher.Dispose() } catch { }
  }
  Get-EventSubscriber | Where-Object { $_.SourceIdentifier -like 'spylog.eventlog.*' } | Unregister-Event -ErrorAction SilentlyContinue
}
