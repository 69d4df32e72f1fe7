-- CreateEnum
CREATE TYPE "ExitReason" AS ENUM ('exited', 'signaled', 'oomKilled', 'unhealthy', 'stopped', 'lost');

-- AlterTable
ALTER TABLE "InstanceStatus" ADD COLUMN     "lastExitAt" TIMESTAMP(3),
ADD COLUMN     "lastExitCode" INTEGER,
ADD COLUMN     "lastExitMessage" TEXT,
ADD COLUMN     "lastExitReason" "ExitReason",
ADD COLUMN     "lastExitSignal" TEXT;
